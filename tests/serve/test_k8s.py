"""The Kubernetes manifests in deploy/k8s, checked offline (no cluster here or in CI).

Every object validates against the Kubernetes OpenAPI schemas shipped by the
``kubernetes-validate`` package, strictly (an unknown field is an error), and a broken
copy is refused, so the check is not vacuous. The manifests also cannot drift from the
code: the router's arguments parse as the real `envfarm router`, every ``ENVFARM_*``
variable is one its command reads, the router's worker list names exactly the
StatefulSet's pods, and images are the Dockerfile's targets at this version.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import REPO
from typer.main import get_command

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


def command(name: str) -> Any:
    """The real `envfarm NAME` command object (typer's click command)."""
    commands = get_command(app).commands  # type: ignore[attr-defined]
    assert name in commands, f"envfarm has no {name!r} command"
    return commands[name]


def parse(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse ``envfarm ARGS`` with these ``ENVFARM_*`` variables set, as the real CLI does, without running it."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("ENVFARM_") and n not in ENV_VARS_READ_ELSEWHERE]:
            mp.delenv(name)
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        return dict(command(args[0]).make_context(args[0], args[1:]).params)


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: e["value"] for e in container.get("env", []) if e["name"].startswith("ENVFARM_") and "value" in e
    }


def test_container_args_and_env_parse_as_the_real_cli() -> None:
    for container in containers():
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


def test_the_router_names_exactly_the_statefulset_pods() -> None:
    workers = find("StatefulSet", "envfarm-worker")
    service = find("Service", workers["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name per pod
    port = service["spec"]["ports"][0]["port"]
    router = next(c for c in containers() if c["name"] == "router")
    listed = parse(router["args"], literal_env(router))["worker"]
    name = workers["metadata"]["name"]
    pods = [f"http://{name}-{i}.{service['metadata']['name']}:{port}" for i in range(workers["spec"]["replicas"])]
    assert listed == pods
    farm = workers["spec"]["template"]["spec"]["containers"][0]
    allowed = next(e["value"] for e in farm["env"] if e["name"] == "ENVFARM_ALLOW_HOSTS")
    assert allowed == f"$(POD_NAME).{service['metadata']['name']}"  # the Host the router sends


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
    router_port = find("Service", "envfarm-router")["spec"]["ports"][0]["port"]
    assert farm_url == f"http://envfarm-router:{router_port}"


def test_images_probes_resources_and_non_root() -> None:
    targets = re.findall(r"^FROM \S+ AS (\S+)$", (REPO / "docker" / "Dockerfile").read_text(), re.MULTILINE)
    for obj in (o for o in objects() if o["kind"] in ("Deployment", "StatefulSet")):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"]:
            image, _, tag = container["image"].partition(":")
            assert image.removeprefix("envfarm-") in targets and tag == __version__
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["path"] == "/healthz"
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            port = container["ports"][0]["containerPort"]
            assert {"name": "ENVFARM_PORT", "value": str(port)} in container["env"]


def test_k8s_docs_apply_this_folder() -> None:
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert "kubectl apply -k deploy/k8s" in docs
    assert Path(K8S / "kustomization.yaml").is_file()
