"""``envfarm generate topics|skeletons|scenarios|all``: the LLM generator's command line.

Kept apart from ``envfarm.cli`` so that serving never imports the generator.
Credentials and endpoints are read the way the providers' own SDKs read them
(``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``,
``OPENAI_API_KEY``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from envfarm.generator.pipeline import Run

generate_app = typer.Typer(
    help="Synthesize environments and scenarios with an LLM (EnvScaler's pipeline, executed and gated).",
    no_args_is_help=True,
)
err = Console(stderr=True, soft_wrap=True)

Provider = Annotated[
    str,
    typer.Option(
        help="anthropic, openai (any OpenAI-compatible server, e.g. vLLM) or replay.", envvar="ENVFARM_LLM_PROVIDER"
    ),
]
Model = Annotated[str | None, typer.Option(help="Model name (default per provider).", envvar="ENVFARM_LLM_MODEL")]
BaseUrl = Annotated[
    str | None, typer.Option(help="Server URL (default: ANTHROPIC_BASE_URL / OPENAI_BASE_URL, as the SDKs read them).")
]
Recording = Annotated[Path | None, typer.Option(help="For --provider replay: a recorded run's cache folder.")]
Corpus = Annotated[Path | None, typer.Option(help="Task corpus, JSONL with a 'task' per line.")]
CorpusLimit = Annotated[int | None, typer.Option(help="Read only the first N tasks of the corpus.")]
Envs = Annotated[int, typer.Option(help="How many environments (the topics backed by the most tasks).")]
Scenarios = Annotated[int, typer.Option(help="Scenarios to ask for per environment.")]
Concurrency = Annotated[int, typer.Option(help="LLM calls in flight at once.")]
Budget = Annotated[float | None, typer.Option("--budget-usd", help="Stop cleanly once this much is spent.")]
Out = Annotated[Path, typer.Option(help="Where finished environment packages are written.")]
Work = Annotated[Path, typer.Option(help="The run's folder: LLM cache, topics, staged packages, report.")]
Repairs = Annotated[int, typer.Option(help="Times a rejected answer is sent back with its error.")]
PriceIn = Annotated[float | None, typer.Option(help="USD per million input tokens (OpenAI-compatible servers).")]
PriceOut = Annotated[float | None, typer.Option(help="USD per million output tokens (OpenAI-compatible servers).")]

EXIT_BUDGET = 3


def _run(
    stage: str,
    provider: str,
    model: str | None,
    base_url: str | None,
    recording: Path | None,
    price_in: float | None,
    price_out: float | None,
    concurrency: int,
    budget: float | None,
    options: dict[str, Any],
) -> None:
    """Build the run, execute one stage (or all) with progress bars, print where the report is."""
    from envfarm.generator.llm import LLM, LLMError, make_provider
    from envfarm.generator.pipeline import Options, Run
    from envfarm.validators.sandbox import SandboxPool

    try:
        llm_provider = make_provider(
            provider, model=model, base_url=base_url, recording=recording, price_in=price_in, price_out=price_out
        )
    except (LLMError, ValueError) as e:  # MissingCredentials among them: no key for a provider that needs one
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    opts = Options(**options)
    llm = LLM(llm_provider, cache_dir=opts.work / "cache", concurrency=concurrency, budget_usd=budget)

    async def go() -> tuple[str, Any]:
        with _progress() as update:
            async with SandboxPool() as pool:
                run = Run(llm, opts, pool, progress=update)
                return await run.guarded(_stage(run, stage))

    try:
        status, result = asyncio.run(go())
    except (ValueError, LLMError) as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    report = json.loads((opts.work / "report.json").read_text(encoding="utf-8"))
    llm_totals = report.get("llm", {}).get("totals", {})
    err.print(
        f"{stage}: {status}; {llm_totals.get('calls', 0)} LLM calls ({llm_totals.get('cached', 0)} from cache), "
        f"${llm_totals.get('cost_usd', 0):.4f}; report: {opts.work / 'report.md'}",
        highlight=False,
    )
    if isinstance(result, list) and result and isinstance(result[0], Path):
        for path in result:
            err.print(f"wrote {path}", highlight=False)
        _how_to_serve(opts.out, [p.name for p in result])
    if status == "budget":
        err.print(f"[yellow]stopped:[/yellow] {report.get('stopped')}; run again with a higher --budget-usd to go on")
        raise typer.Exit(EXIT_BUDGET)


def _how_to_serve(out: Path, env_ids: list[str]) -> None:
    """Say how to serve what was written: directly when ``out`` is a folder the farm searches."""
    import envfarm.servers

    searched = {str(Path(p).resolve()) for p in envfarm.servers.__path__}
    ids = " ".join(env_ids)
    if str(out.resolve()) in searched:
        err.print(f"serve it: envfarm serve {ids}", highlight=False)
    else:
        err.print(f"serve it: ENVFARM_ENV_PATH={out.resolve()} envfarm serve {ids}", highlight=False)


def _stage(run: Run, stage: str) -> Callable[[], Any]:
    return {"topics": run.topics, "skeletons": run.skeletons, "scenarios": run.scenarios, "all": run.all}[stage]


class _progress:
    """Rich progress bars, one per stage, fed by the run's (what, done, total) callback."""

    def __enter__(self) -> Callable[[str, int, int], None]:
        self.bars = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        )
        self.bars.start()
        self.tasks: dict[str, Any] = {}
        return self.update

    def update(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.bars.add_task(what, total=total)
        self.bars.update(self.tasks[what], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()


def _command(stage: str, doc: str) -> None:
    def command(
        provider: Provider = "anthropic",
        model: Model = None,
        base_url: BaseUrl = None,
        recording: Recording = None,
        corpus: Corpus = None,
        corpus_limit: CorpusLimit = None,
        envs: Envs = 3,
        scenarios: Scenarios = 5,
        concurrency: Concurrency = 4,
        budget_usd: Budget = None,
        out: Out = Path("servers"),
        work: Work = Path(".envfarm-generate"),
        max_repairs: Repairs = 2,
        price_in: PriceIn = None,
        price_out: PriceOut = None,
    ) -> None:
        options = {
            "work": work,
            "out": out,
            "corpus": corpus,
            "corpus_limit": corpus_limit,
            "envs": envs,
            "scenarios": scenarios,
            "max_repairs": max_repairs,
        }
        _run(stage, provider, model, base_url, recording, price_in, price_out, concurrency, budget_usd, options)

    command.__doc__ = doc
    generate_app.command(stage)(command)


_command("topics", "Judge the corpus and pick environment topics (writes WORK/topics.json).")
_command("skeletons", "Design, write and test each topic's environment code (staged in WORK/staging).")
_command("scenarios", "Write gated scenarios for each accepted environment and publish it to OUT.")
_command("all", "Topics, skeletons and scenarios in one go.")
