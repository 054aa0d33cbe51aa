"""``envfarm run``: a model on a set of scenarios, each episode run, scored and written as it ends.

:func:`run` plans the episodes (environments x scenarios, filtered by id and split, x trials), skips
those ``RUN_DIR/results.jsonl`` already holds, and runs the rest ``concurrency`` at a time against a farm
(``--farm URL``: any farm or router; else one served in this process). Every model call goes through the
LLM layer with its cache in ``RUN_DIR/cache``, so a run killed and started again with the same command
repeats no model call it had already made and ends with the results an unbroken run would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from envfarm import __version__
from envfarm.agents.errors import AgentsError
from envfarm.agents.policy import LLMPolicy
from envfarm.agents.progress import RunProgress, Tally
from envfarm.agents.prompts import MODES, Mode
from envfarm.agents.results import CACHE, RESULTS, RUN, Key, ResultsFile, record, write_json
from envfarm.agents.rollout import Rollout, rollout
from envfarm.client import AsyncFarm, FarmError
from envfarm.generator.llm.chat import ChatLLM, make_chat_provider
from envfarm.generator.llm.errors import BudgetExceeded, LLMError

if TYPE_CHECKING:
    from envfarm.core.environments import Environment

SPLITS = ("train", "test")
PROVIDERS = ("anthropic", "openai", "replay")
# Settings that change what the model is asked: a run folder holds one combination of them.
IDENTITY = ("mode", "provider", "model", "user_provider", "user_model", "max_turns", "max_tokens", "temperature")


@dataclass
class RunConfig:
    """Everything ``envfarm run`` takes (docs/agents.md explains each)."""

    out: Path
    envs: list[str]
    model: str
    provider: str = "anthropic"
    base_url: str | None = None
    recording: Path | None = None
    price_in: float | None = None
    price_out: float | None = None
    scenarios: list[str] = field(default_factory=list)
    split: str | None = None
    mode: Mode = "task"
    user_model: str | None = None
    user_provider: str | None = None
    user_base_url: str | None = None
    trials: int = 1
    concurrency: int = 4
    max_turns: int = 30
    max_tokens: int = 4096
    temperature: float = 0.0
    farm: str | None = None
    token: str | None = None
    budget_usd: float | None = None
    sandbox_workers: int | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.mode == "conversation":
            self.user_provider = self.user_provider or self.provider
            self.user_model = self.user_model or self.model
            if self.user_base_url is None and self.user_provider == self.provider:
                self.user_base_url = self.base_url
        else:
            self.user_provider = self.user_model = self.user_base_url = None

    def check(self) -> None:
        """Refuse settings that cannot make a run, saying which."""
        problems = []
        if not self.envs:
            problems.append("name at least one environment (--env)")
        if self.mode not in MODES:
            problems.append(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.split is not None and self.split not in SPLITS:
            problems.append(f"--split must be train or test, not {self.split!r}")
        for flag, name in (("--provider", self.provider), ("--user-provider", self.user_provider)):
            if name is not None and name not in PROVIDERS:
                problems.append(f"{flag} must be one of {', '.join(PROVIDERS)}, not {name!r}")
        for flag, value in (
            ("--trials", self.trials),
            ("--concurrency", self.concurrency),
            ("--max-turns", self.max_turns),
            ("--max-tokens", self.max_tokens),
        ):
            if value < 1:
                problems.append(f"{flag} must be at least 1, not {value}")
        if not self.model:
            problems.append("--model is required")
        if problems:
            raise AgentsError("; ".join(problems))

    def settings(self) -> dict[str, Any]:
        """The settings as ``run.json`` keeps them (no token)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("token", "out")}
        out["recording"] = str(self.recording) if self.recording else None
        out["farm"] = self.farm or "in-process"
        return out


@dataclass(frozen=True)
class Planned:
    env: str
    scenario: str
    split: str
    trial: int

    @property
    def key(self) -> Key:
        return self.env, self.scenario, self.trial


@dataclass
class RunSummary:
    """How a run went: ``status`` is ``finished``, or ``budget`` when it stopped at ``--budget-usd``."""

    out: Path
    total: int
    before: int  # episodes done by earlier runs of this folder
    ran: int
    errors: int
    status: str
    tally: Tally
    ledger: dict[str, Any]
    stopped: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _open_run_json(config: RunConfig) -> dict[str, Any]:
    """``run.json`` for this run: new, or the earlier run's if its settings match (else refuse).

    It holds the settings at the top level (``model``, ``mode``, ``envs`` ...), and ``envfarm`` (the version),
    ``status`` (running, finished, budget, stopped), ``episodes`` (planned), ``started``, ``updated``, ``resumed`` (how
    many times the run was started again) and ``llm`` (the ledger: calls, cached answers, retries, tokens, cost).
    """
    path = config.out / RUN
    settings = config.settings()
    if path.exists():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(earlier, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            raise AgentsError(f"{path} is not a run's settings file ({e}); use another --out") from None
        changed = [f"{k}: {earlier.get(k)!r} -> {settings[k]!r}" for k in IDENTITY if earlier.get(k) != settings[k]]
        if changed:
            raise AgentsError(
                f"{config.out} holds a run with other settings ({'; '.join(changed)}); "
                "use another --out, or the same settings to resume it"
            )
        earlier.update(settings)
        earlier.update(status="running", updated=_now(), resumed=int(earlier.get("resumed", 0)) + 1)
        return dict(earlier)
    return {**settings, "envfarm": __version__, "status": "running", "started": _now(), "updated": _now()}


def _make_llms(config: RunConfig) -> tuple[ChatLLM, ChatLLM | None]:
    cache = config.out / CACHE
    try:
        agent = ChatLLM(
            make_chat_provider(
                config.provider, config.model, config.base_url, config.recording, config.price_in, config.price_out
            ),
            cache_dir=cache,
            concurrency=config.concurrency,
            budget_usd=config.budget_usd,
        )
        user = None
        if config.mode == "conversation":
            assert config.user_provider is not None
            provider = make_chat_provider(
                config.user_provider, config.user_model, config.user_base_url, config.recording
            )
            user = ChatLLM(
                provider,
                cache_dir=cache,
                concurrency=config.concurrency,
                budget_usd=config.budget_usd,
                ledger=agent.ledger,
            )
    except (LLMError, ValueError) as e:  # no key, no SDK, an unknown provider, a missing recording
        raise AgentsError(str(e)) from None
    return agent, user


@contextlib.asynccontextmanager
async def _farm_url(config: RunConfig, catalog: dict[str, Environment] | None) -> AsyncIterator[str]:
    if config.farm:
        yield config.farm
        return
    from envfarm.agents.local import serve_in_process
    from envfarm.core.environments import PackageError, load_catalog

    if catalog is None:
        try:
            catalog = load_catalog(config.envs)
        except PackageError as e:
            raise AgentsError(str(e)) from None
    else:
        unknown = sorted(set(config.envs) - set(catalog))
        if unknown:
            raise AgentsError(f"unknown environment(s) {unknown}; known: {sorted(catalog)}")
        catalog = {e: catalog[e] for e in config.envs}
    async with serve_in_process(catalog, sandbox_workers=config.sandbox_workers) as url:
        yield url


async def plan(farm: AsyncFarm, config: RunConfig) -> list[Planned]:
    """The run's episodes, in order: each environment's scenarios (by id, in the farm's order) x trials."""
    try:
        known = [e["id"] for e in await farm.envs()]
        unknown = [e for e in config.envs if e not in known]
        if unknown:
            raise AgentsError(
                f"the farm at {farm.url} has no environment {', '.join(map(repr, unknown))}; it has: {', '.join(known)}"
            )
        listed = {env: await farm.scenarios(env) for env in dict.fromkeys(config.envs)}
    except httpx.HTTPError as e:
        raise AgentsError(f"cannot reach the farm at {farm.url}: {type(e).__name__}: {e}") from None
    except FarmError as e:
        raise AgentsError(f"the farm at {farm.url} answered {e}") from None
    wanted = set(config.scenarios)
    missing = wanted - {s["id"] for scenarios in listed.values() for s in scenarios}
    if missing:
        raise AgentsError(f"no scenario {', '.join(sorted(map(repr, missing)))} in {', '.join(listed)}")
    out = []
    for env, scenarios in listed.items():
        for s in scenarios:
            split = s.get("split") or "train"
            if (wanted and s["id"] not in wanted) or (config.split and split != config.split):
                continue
            out += [Planned(env, s["id"], split, trial) for trial in range(config.trials)]
    if not out:
        raise AgentsError(f"no scenario of {', '.join(listed)} is in the {config.split} split")
    return out


def _failed(item: Planned, mode: Mode, error: Exception) -> Rollout:
    """The record of an episode that could not even run (the farm refused to open it ...)."""
    return Rollout(
        env=item.env,
        scenario=item.scenario,
        mode=mode,
        episode_id="",
        messages=[],
        tools=[],
        calls=[],
        score=None,
        turns=0,
        ended="error",
        truncated=False,
        error=f"{type(error).__name__}: {error}",
        tool_errors={},
        refusals={},
    )


async def run(
    config: RunConfig, *, catalog: dict[str, Environment] | None = None, progress: RunProgress | None = None
) -> RunSummary:
    """Run the episodes of ``config`` not yet in ``RUN_DIR/results.jsonl``; see the module docstring.

    ``catalog`` serves these environments in process instead of loading them by id (tests add scenarios to
    them). Raises :class:`~envfarm.agents.errors.AgentsError` for anything that keeps the run from starting.
    """
    config.check()
    config.out.mkdir(parents=True, exist_ok=True)
    meta = _open_run_json(config)
    agent_llm, user_llm = _make_llms(config)
    results = ResultsFile(config.out / RESULTS)
    try:
        done = results.load()
    except ValueError as e:
        raise AgentsError(str(e)) from None
    write_json(config.out / RUN, meta)
    policy = LLMPolicy(agent_llm, max_tokens=config.max_tokens, temperature=config.temperature)
    ran = errors = 0
    stopped: BudgetExceeded | None = None
    completed = False
    tally = Tally()
    try:
        async with _farm_url(config, catalog) as url, AsyncFarm(url, config.token, timeout=300) as farm:
            planned = await plan(farm, config)
            todo = [p for p in planned if p.key not in done]
            before = [done[p.key] for p in planned if p.key in done]
            meta.update(episodes=len(planned), updated=_now())
            write_json(config.out / RUN, meta)
            if progress is not None:
                progress.start(len(planned), before)
                tally = progress.tally
            else:
                for line in before:
                    tally.add(line)
            queue = list(reversed(todo))

            async def one(item: Planned) -> dict[str, Any]:
                try:
                    finished = await rollout(
                        farm,
                        item.env,
                        item.scenario,
                        policy.for_sample(item.trial),
                        mode=config.mode,
                        user=user_llm,
                        max_turns=config.max_turns,
                        sample=item.trial,
                    )
                except BudgetExceeded:
                    raise
                except Exception as e:  # the episode could not be opened or closed: recorded, run again next time
                    finished = _failed(item, config.mode, e)
                return record(
                    finished,
                    split=item.split,
                    trial=item.trial,
                    model=config.model,
                    provider=config.provider,
                    user_model=config.user_model,
                )

            async def worker() -> None:
                nonlocal ran, errors, stopped
                while queue and stopped is None:
                    item = queue.pop()
                    try:
                        line = await one(item)
                    except BudgetExceeded as e:
                        stopped = stopped or e
                        return
                    results.append(line)
                    ran += 1
                    errors += line["ended"] == "error"
                    if progress is not None:
                        progress.finished(line)
                    else:
                        tally.add(line)

            try:
                await asyncio.gather(*(worker() for _ in range(min(config.concurrency, len(todo)))))
                completed = True
            finally:
                if progress is not None:
                    progress.stop()
    finally:
        await agent_llm.aclose()
        if user_llm is not None:
            await user_llm.aclose()
        meta.update(
            status="budget" if stopped else ("finished" if completed else "stopped"),
            updated=_now(),
            llm=agent_llm.ledger.as_dict(),
        )
        write_json(config.out / RUN, meta)
    return RunSummary(
        out=config.out,
        total=len(planned),
        before=len(before),
        ran=ran,
        errors=errors,
        status="budget" if stopped else "finished",
        tally=tally,
        ledger=agent_llm.ledger.as_dict(),
        stopped=str(stopped) if stopped else None,
    )
