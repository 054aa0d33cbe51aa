"""The Kubernetes manifests in deploy/k8s, checked offline (no cluster here or in CI).

Every object validates against the Kubernetes OpenAPI schemas shipped by the
``kubernetes-validate`` package, strictly (an unknown field is an error), and a broken
copy is refused, so the check is not vacuous. The manifests also cannot drift from the
code: every envfarm container's arguments parse as the real command (the proxy's init
container's as `envfarm proxy nginx`), every ``ENVFARM_*`` variable is one its command
reads, the proxy's configuration is generated from the StatefulSet's name, replicas and
headless Service and names exactly its pods (and nginx accepts it), each worker's node
name is its pod's, and images are the Dockerfile's targets at this version (nginx: one
that resolves upstream names while it runs).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import REPO
from typer.main import get_command
from typer.testing import CliRunner

from envfarm import __version__
from envfarm.cli import app

K8S = REPO / "deploy" / "k8s"
VERSIONS = ["1.29", kubernetes_validate.latest_version()]  # oldest supported upstream here, and newest known
ENV_VARS_READ_ELSEWHERE = {"ENVFARM_ENV_PATH"}  # read by envfarm.core.environments, in every command
DELETE = object()


def manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def objects() -> list[dict[str, Any]]:
    return [doc for docs in manifests().values() for doc in docs]


def find(kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name)


def containers() -> list[dict[str, Any]]:
    return [
        c
        for o in objects()
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
    ]


def farm_containers() -> list[dict[str, Any]]:
    """The containers that serve from the envfarm image (the farm and the validator; not nginx)."""
    return [c for c in containers() if c["image"].startswith("envfarm-")]


def validate(doc: dict[str, Any]) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_follows_the_kubernetes_schema(obj: dict[str, Any]) -> None:
    validate(obj)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (["spec", "replicas"], "three"),  # wrong type
        (["spec", "template", "spec", "containers", 0, "imagePullPolcy"], "Always"),  # unknown field (a typo)
        (["spec", "template", "spec", "containers", 0, "name"], DELETE),  # a required field missing
    ],
)
def test_a_broken_manifest_is_refused(where: list[Any], value: Any) -> None:
    broken = copy.deepcopy(find("StatefulSet", "envfarm-worker"))
    node = broken
    for key in where[:-1]:
        node = node[key]
    if value is DELETE:
        del node[where[-1]]
    else:
        node[where[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(manifests())


def command(name: str, sub: str | None = None) -> Any:
    """The real `envfarm NAME [SUB]` command object (typer's click command)."""
    commands = get_command(app).commands  # type: ignore[attr-defined]
    assert name in commands, f"envfarm has no {name!r} command"
    if sub is None:
        return commands[name]
    assert sub in commands[name].commands, f"envfarm {name} has no {sub!r} command"
    return commands[name].commands[sub]


def parse(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse ``envfarm ARGS`` with these ``ENVFARM_*`` variables set, as the real CLI does, without running it."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("ENVFARM_") and n not in ENV_VARS_READ_ELSEWHERE]:
            mp.delenv(name)
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        if args[0] == "proxy":  # a command group: `envfarm proxy nginx ...`
            return dict(command("proxy", args[1]).make_context(args[1], args[2:]).params)
        return dict(command(args[0]).make_context(args[0], args[1:]).params)


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: e["value"] for e in container.get("env", []) if e["name"].startswith("ENVFARM_") and "value" in e
    }


def test_container_args_and_env_parse_as_the_real_cli() -> None:
    for container in farm_containers():
        args = container["args"]
        params = parse(args, literal_env(container))  # flags, and variables' values, of the right type
        assert params["port"] == container["ports"][0]["containerPort"] and params["host"] == "0.0.0.0"
        known = {p.envvar for p in command(args[0]).params if isinstance(p.envvar, str)} | ENV_VARS_READ_ELSEWHERE
        named = {e["name"] for e in container.get("env", []) if e["name"].startswith("ENVFARM_")}
        assert named <= known, f"{container['name']}: {sorted(named - known)} are not read by envfarm {args[0]}"
    with pytest.raises(Exception, match="No such option: --workers"):  # not vacuous: a misspelled flag fails
        parse(["router", "--workers", "http://x:1"])
    with pytest.raises(Exception, match="valid integer"):  # and so does a variable of the wrong type
        parse(["router"], {"ENVFARM_PORT": "http"})


def nginx_version(binary: str) -> tuple[int, ...]:
    shown = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", shown)
    return tuple(int(n) for n in found.groups()) if found else (0,)


def test_the_proxy_is_generated_from_the_statefulset_and_names_exactly_its_pods(tmp_path: Path) -> None:
    workers = find("StatefulSet", "envfarm-worker")
    service = find("Service", workers["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name per pod
    assert service["spec"]["publishNotReadyAddresses"] is True  # a busy pod's episodes still reach it
    port = service["spec"]["ports"][0]["port"]
    pod = find("Deployment", "envfarm-proxy")["spec"]["template"]["spec"]
    init, nginx = pod["initContainers"][0], pod["containers"][0]
    params = parse(init["args"])
    name, replicas = workers["metadata"]["name"], workers["spec"]["replicas"]
    assert (params["statefulset"], params["replicas"], params["worker_port"]) == (name, replicas, port)
    assert params["domain"] == f"{service['metadata']['name']}.$(POD_NAMESPACE).svc.cluster.local"
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in init["env"]
    assert params["resolver"] == ["auto"]  # the cluster's DNS, from the pod's resolv.conf
    assert params["port"] == nginx["ports"][0]["containerPort"] and params["host"] == "0.0.0.0"
    # nginx reads the file the init container wrote, and keeps its pid and temporary files in an emptyDir.
    run = nginx["command"]
    conf, prefix = Path(run[run.index("-c") + 1]), run[run.index("-p") + 1]
    assert run[0] == "nginx" and params["output"] == conf
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in nginx["volumeMounts"]}
    assert mounts[str(conf.parent)] == {m["mountPath"]: m["name"] for m in init["volumeMounts"]}[str(conf.parent)]
    assert "emptyDir" in volumes[mounts[prefix]] and "emptyDir" in volumes[mounts[str(conf.parent)]]

    # The configuration the real command writes, with the namespace as Kubernetes fills it in.
    out = tmp_path / "nginx.conf"
    args = [a.replace("$(POD_NAMESPACE)", "default") for a in init["args"]]
    args[args.index("--output") + 1], args[args.index("--resolver") + 1] = str(out), "10.96.0.10"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    pods = [f"{name}-{i}" for i in range(replicas)]
    for node in pods:  # each pod: its own group (found by the node its ids name), and one of the new episodes'
        address = f"{node}.{service['metadata']['name']}.default.svc.cluster.local:{port}"
        assert f"server {address} resolve;  # {node}" in text
        assert f"server {address} resolve max_fails=1 fail_timeout=5s;  # {node}" in text
        assert f"        {node} envfarm_node_{node};" in text
    assert len(re.findall(r"^ +server [^{]", text, re.MULTILINE)) == 2 * replicas  # no other server
    assert "resolver 10.96.0.10 valid=5s" in text
    assert f"listen {params['port']};" in text

    # And nginx takes it: the image's nginx (1.27.3+) as it is; an older local nginx, which cannot resolve
    # upstream names at run time, checks the rest with the pods' names in place of 127.0.0.1.
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run installs it)")
    if nginx_version(binary) < (1, 27, 3):
        text = re.sub(r"server \S+\.svc\.cluster\.local:(\d+) resolve", r"server 127.0.0.1:\1", text)
    with tempfile.TemporaryDirectory() as where:
        (Path(where) / "nginx.conf").write_text(text)
        checked = subprocess.run(
            [binary, "-t", "-p", where, "-c", f"{where}/nginx.conf", "-e", "stderr"], capture_output=True, text=True
        )
    assert checked.returncode == 0, checked.stderr


def test_each_worker_is_the_node_its_pod_is_named_and_accepts_the_proxys_host() -> None:
    farm = find("StatefulSet", "envfarm-worker")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in farm["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["ENVFARM_NODE"]["value"] == "$(POD_NAME)"
    names = [e["name"] for e in farm["env"]]
    assert names.index("POD_NAME") < names.index("ENVFARM_NODE")  # $(POD_NAME) expands only once defined
    # The proxy passes on the Host its clients use, so that mcp_url names the proxy: workers accept it.
    proxy = find("Service", "envfarm-proxy")["metadata"]["name"]
    assert proxy in env["ENVFARM_ALLOW_HOSTS"]["value"].split()
    assert parse(["serve"], {"ENVFARM_NODE": "envfarm-worker-2"})["node"] == "envfarm-worker-2"


def test_services_select_their_pods_and_validator_reads_through_the_router() -> None:
    for service in (o for o in objects() if o["kind"] == "Service"):
        pods = [
            o
            for o in objects()
            if o["kind"] in ("Deployment", "StatefulSet")
            and service["spec"]["selector"].items() <= o["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, service["metadata"]["name"]
        ports = {
            p["name"]: p["containerPort"] for c in pods[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        assert service["spec"]["ports"][0]["targetPort"] in ports
    validator = next(c for c in containers() if c["name"] == "validator")
    farm_url = next(e["value"] for e in validator["env"] if e["name"] == "ENVFARM_FARM_URL")
    proxy_port = find("Service", "envfarm-proxy")["spec"]["ports"][0]["port"]
    assert farm_url == f"http://envfarm-proxy:{proxy_port}"


def test_images_probes_resources_and_non_root() -> None:
    targets = re.findall(r"^FROM \S+ AS (\S+)$", (REPO / "docker" / "Dockerfile").read_text(), re.MULTILINE)
    for obj in (o for o in objects() if o["kind"] in ("Deployment", "StatefulSet")):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"] + pod.get("initContainers", []):
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            image, _, tag = container["image"].partition(":")
            if image == "nginx":  # the proxy: a release whose upstream servers can `resolve` (1.27.3 and later)
                version = tuple(int(n) for n in tag.split("-")[0].split(".")[:2])
                assert version >= (1, 28), tag
                for probe in ("livenessProbe", "readinessProbe"):
                    assert container[probe]["httpGet"]["path"] == "/proxy/healthz"
                continue
            assert image.removeprefix("envfarm-") in targets and tag == __version__
            if container in pod.get("initContainers", []):
                continue
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe in container:
                    get = container[probe]["httpGet"]
                    assert get["path"] == "/healthz"
                    # The kubelet's Host would be the pod's IP, which the farm's Host check refuses (421).
                    assert get["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
            port = container["ports"][0]["containerPort"]
            assert {"name": "ENVFARM_PORT", "value": str(port)} in container["env"]


def test_k8s_docs_apply_this_folder() -> None:
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert "kubectl apply -k deploy/k8s" in docs
    assert Path(K8S / "kustomization.yaml").is_file()
