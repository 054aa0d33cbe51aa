"""``envfarm run``: evaluate a model on the farm's scenarios (task or conversation mode), results in RUN_DIR.

Kept apart so that ``envfarm serve`` never imports the agents or the LLM layer. Credentials and endpoints
are read the way the providers' own SDKs read them (``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``,
``OPENAI_BASE_URL``, ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from envfarm.cli.common import app, err

EXIT_BAD_INPUT = 2
EXIT_BUDGET = 3
EXIT_EPISODE_ERRORS = 1


class ProviderName(StrEnum):
    anthropic = "anthropic"
    openai = "openai"
    replay = "replay"


class ModeName(StrEnum):
    task = "task"
    conversation = "conversation"


class SplitName(StrEnum):
    train = "train"
    test = "test"


@app.command("run")
def run_command(
    env: Annotated[list[str], typer.Option("--env", help="Environment to run (repeat the flag for more).")],
    model: Annotated[str, typer.Option(help="The agent's model, e.g. claude-sonnet-4-6 or a vLLM model name.")],
    out: Annotated[Path, typer.Option(help="The run's folder: results.jsonl, run.json, the LLM cache.")],
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", help="Only these scenario ids (repeat the flag).")
    ] = None,
    split: Annotated[SplitName | None, typer.Option(help="Only scenarios of this split.")] = None,
    provider: Annotated[
        ProviderName, typer.Option(help="anthropic, openai (any OpenAI-compatible server, e.g. vLLM) or replay.")
    ] = ProviderName.anthropic,
    base_url: Annotated[
        str | None, typer.Option(help="Model server URL (default: ANTHROPIC_BASE_URL / OPENAI_BASE_URL).")
    ] = None,
    recording: Annotated[
        Path | None, typer.Option(help="For --provider replay: the cache folder of an earlier run (RUN_DIR/cache).")
    ] = None,
    mode: Annotated[
        ModeName, typer.Option(help="task: the agent gets the task; conversation: a simulated user has it.")
    ] = ModeName.task,
    user_model: Annotated[
        str | None, typer.Option(help="Conversation mode: the simulated user's model (default: --model).")
    ] = None,
    user_provider: Annotated[
        ProviderName | None, typer.Option(help="Conversation mode: the user's provider (default: --provider).")
    ] = None,
    user_base_url: Annotated[
        str | None, typer.Option(help="Conversation mode: the user's server (default: --base-url, same provider).")
    ] = None,
    trials: Annotated[int, typer.Option(help="Episodes per scenario (for pass^k).")] = 1,
    concurrency: Annotated[int, typer.Option(help="Episodes in flight at once.")] = 4,
    max_turns: Annotated[int, typer.Option(help="Agent turns before an episode is cut off (truncated).")] = 30,
    max_tokens: Annotated[int, typer.Option(help="Most tokens in one answer of the agent.")] = 4096,
    temperature: Annotated[float, typer.Option(help="The agent's sampling temperature.")] = 0.0,
    farm: Annotated[
        str | None, typer.Option(help="A farm or envfarm router to run against (default: one served in process).")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="ENVFARM_TOKEN", help="The farm's bearer token.")] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", help="Stop cleanly once this much is spent.")
    ] = None,
    price_in: Annotated[float | None, typer.Option(help="USD per million input tokens (override).")] = None,
    price_out: Annotated[float | None, typer.Option(help="USD per million output tokens (override).")] = None,
    sandbox_workers: Annotated[
        int | None, typer.Option(help="In-process farm: check sandbox worker processes (default: CPUs).")
    ] = None,
) -> None:
    """Run an agent in episodes over MCP; each one is scored and appended to RUN_DIR/results.jsonl as it ends.

    Started again with the same command, a run does only the episodes not yet done (answers: RUN_DIR/cache).
    """
    from envfarm.agents.errors import AgentsError
    from envfarm.agents.progress import RunProgress
    from envfarm.agents.run import RunConfig, RunSummary, run

    config = RunConfig(
        out=out,
        envs=list(dict.fromkeys(env)),
        model=model,
        provider=provider.value,
        base_url=base_url,
        recording=recording,
        price_in=price_in,
        price_out=price_out,
        scenarios=list(dict.fromkeys(scenario or [])),
        split=split.value if split else None,
        mode=mode.value,  # type: ignore[arg-type]
        user_model=user_model,
        user_provider=user_provider.value if user_provider else None,
        user_base_url=user_base_url,
        trials=trials,
        concurrency=concurrency,
        max_turns=max_turns,
        max_tokens=max_tokens,
        temperature=temperature,
        farm=farm,
        token=token,
        budget_usd=budget_usd,
        sandbox_workers=sandbox_workers,
    )
    progress = RunProgress(err)
    _logging(progress.live)
    try:
        summary: RunSummary = asyncio.run(run(config, progress=progress))
    except AgentsError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        err.print(f"interrupted; finished episodes are in {out / 'results.jsonl'}: run the same command to go on")
        raise typer.Exit(130) from None
    llm = summary.ledger.get("totals", {})
    err.print(
        f"{summary.ran} episodes run now, {summary.before} before, of {summary.total}: {summary.tally.summary()}; "
        f"{llm.get('calls', 0)} model calls ({llm.get('cached', 0)} from the cache, {llm.get('retries', 0)} retries); "
        f"results: {out / 'results.jsonl'}",
        highlight=False,
        markup=False,
    )
    if summary.status == "budget":
        err.print(f"[yellow]stopped:[/yellow] {escape(summary.stopped or '')}; run again with a higher --budget-usd")
        raise typer.Exit(EXIT_BUDGET)
    if summary.errors:
        err.print(
            f"[yellow]{summary.errors} episode(s) ended in error[/yellow] (see 'error' in results.jsonl); "
            "run the same command again to retry them",
            highlight=False,
        )
        raise typer.Exit(EXIT_EPISODE_ERRORS)


def _logging(live: bool) -> None:
    """Warnings (retries, prices) above the progress bar on a terminal, as plain lines elsewhere."""
    handler: logging.Handler
    if live:
        from rich.logging import RichHandler

        handler = RichHandler(console=err, show_time=False, show_path=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("envfarm")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
