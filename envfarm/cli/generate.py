"""``envfarm generate topics|skeletons|scenarios|all``: the LLM generator's command line.

Kept apart from ``envfarm.cli`` so that serving never imports the generator.
Credentials and endpoints are read the way the providers' own SDKs read them
(``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``,
``OPENAI_API_KEY``).

However a run ends, it ends with the report written (``WORK/report.json`` and
``report.md``) and, unless it made something, one line on stderr saying why
and a non-zero exit code (``envfarm.generator.failures.EXIT_CODES``): never a
traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from envfarm.generator.failures import Failure
    from envfarm.generator.pipeline import Run

generate_app = typer.Typer(
    help="Synthesize environments and scenarios with an LLM (EnvScaler's pipeline, executed and gated).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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
Recording = Annotated[
    str | None,
    typer.Option(help="For --provider replay: a run's cache folder, a recording file, or a bundled one by name."),
]
Corpus = Annotated[
    str | None,
    typer.Option(
        help="Task corpus: a JSONL file with a 'task' per line, or a bundled one by name "
        "(default: api-bank-lv3; a replay uses its recording's)."
    ),
]
CorpusLimit = Annotated[int | None, typer.Option(min=1, help="Read only the first N tasks of the corpus.")]
Envs = Annotated[int, typer.Option(min=1, help="How many environments (the topics backed by the most tasks).")]
Scenarios = Annotated[int, typer.Option(min=1, help="Scenarios to ask for per environment.")]
Concurrency = Annotated[int, typer.Option(min=1, help="LLM calls in flight at once.")]
Budget = Annotated[float | None, typer.Option("--budget-usd", min=0, help="Stop cleanly once this much is spent.")]
Out = Annotated[Path, typer.Option(help="Where finished environment packages are written.")]
Work = Annotated[Path, typer.Option(help="The run's folder: LLM cache, topics, staged packages, report.")]
Repairs = Annotated[int, typer.Option(min=0, help="Times a rejected answer is sent back with its error.")]
PriceIn = Annotated[float | None, typer.Option(min=0, help="USD per million input tokens (OpenAI-compatible servers).")]
PriceOut = Annotated[
    float | None, typer.Option(min=0, help="USD per million output tokens (OpenAI-compatible servers).")
]
Timeout = Annotated[float, typer.Option(min=0.1, help="Seconds one LLM call may take before it counts as failed.")]
CallSeconds = Annotated[
    float,
    typer.Option(
        min=0.1,
        help="Seconds one call of a generated tool may run (in its contained worker) before it counts as a crash.",
    ),
]
Retries = Annotated[
    int, typer.Option(min=0, help="Times a failed LLM call (429, 5xx, timeout, no connection) is tried again.")
]

EXIT_TERMINATED = 143  # SIGTERM (Ctrl-C is EXIT_CODES["interrupted"], 130)


def _run(stage: str, llm_options: dict[str, Any], options: dict[str, Any]) -> None:
    """Build the run, execute one stage (or all) with progress bars, print where the report is."""
    from envfarm.generator import bundled
    from envfarm.generator.contained import RunnerLimits
    from envfarm.generator.failures import Failure, InputError
    from envfarm.generator.llm import LLM, LLMError, make_provider
    from envfarm.generator.pipeline import Options, Run, write_failure_report
    from envfarm.validators.sandbox import SandboxPool

    work: Path = options["work"]
    try:
        work.mkdir(parents=True, exist_ok=True)
        (work / ".write-test").write_bytes(b"")
        (work / ".write-test").unlink()
    except OSError as e:
        _say(f"error: --work {work}: cannot write there ({e.strerror or e}), so no report could be written either")
        raise typer.Exit(2) from None

    provider, model = llm_options["provider"], llm_options["model"]

    def fail_before_start(kind: str, message: str) -> NoReturn:
        failure = Failure(kind, "start", message)
        write_failure_report(work, failure, provider, model)
        _fail(failure, work)

    try:
        recording = llm_options["recording"]
        recording_path = bundled.recording_path(recording) if recording is not None else None
        if stage in ("topics", "all"):
            corpus = options["corpus"]
            if corpus is not None:
                options["corpus"] = bundled.corpus_path(corpus)
            else:
                own = bundled.recording_corpus(recording_path) if provider == "replay" and recording_path else None
                options["corpus"] = own or bundled.corpus_path(bundled.DEFAULT_CORPUS)
        llm_provider = make_provider(
            provider,
            model=model,
            base_url=llm_options["base_url"],
            recording=recording_path,
            price_in=llm_options["price_in"],
            price_out=llm_options["price_out"],
            timeout=llm_options["timeout"],
        )
    except (LLMError, InputError) as e:  # MissingCredentials among them: no key for a provider that needs one
        fail_before_start("input", str(e))
    opts = Options(**{**options, "corpus": options["corpus"] if isinstance(options["corpus"], Path) else None})
    llm = LLM(
        llm_provider,
        cache_dir=opts.work / "cache",
        concurrency=llm_options["concurrency"],
        budget_usd=llm_options["budget"],
        max_retries=llm_options["retries"],
    )
    held: dict[str, Any] = {}

    async def go() -> tuple[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def terminate() -> None:
            held["terminated"] = True
            task.cancel()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        pool = SandboxPool()
        with _progress() as update:
            limits = RunnerLimits(call_seconds=llm_options["call_seconds"])
            run = held["run"] = Run(llm, opts, pool, progress=update, limits=limits)
            chosen = _stage(run, stage)

            async def with_sandbox() -> Any:
                async with pool:
                    return await chosen()

            with_sandbox.__name__ = stage
            try:
                return await run.guarded(with_sandbox)
            finally:
                with contextlib.suppress(Exception):
                    await llm.aclose()

    try:
        status, result = asyncio.run(go())
    except (KeyboardInterrupt, asyncio.CancelledError):
        run = held.get("run")
        code = EXIT_TERMINATED if held.get("terminated") else 130
        failure = getattr(run, "failure", None)
        if failure is None:
            _say(f"error: {stage}: interrupted before the run started")
            raise typer.Exit(code) from None
        _fail(failure, work, code)
    run = held["run"]
    _totals(stage, status, work)
    if isinstance(result, list) and result and isinstance(result[0], Path):
        for path in result:
            _say(f"wrote {path}")
        _how_to_serve(opts.out, [p.name for p in result])
    if run.failure is not None:
        _fail(run.failure, work)


def _totals(stage: str, status: str, work: Path) -> None:
    try:
        report = json.loads((work / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    llm_totals = report.get("llm", {}).get("totals", {})
    _say(
        f"{stage}: {status}; {llm_totals.get('calls', 0)} LLM calls ({llm_totals.get('cached', 0)} from cache), "
        f"${llm_totals.get('cost_usd', 0):.4f}; report: {work / 'report.md'}"
    )


def _fail(failure: Failure, work: Path, code: int | None = None) -> NoReturn:
    """The last line: what went wrong, and where the report is; then the kind's exit code."""
    _say(f"error: {failure.line()} (report: {work / 'report.md'})")
    raise typer.Exit(failure.exit_code if code is None else code)


def _say(text: str) -> None:
    """One line on stderr, as given (no markup: messages quote lists and brackets)."""
    err.print(text, markup=False, highlight=False)


def _how_to_serve(out: Path, env_ids: list[str]) -> None:
    """Say how to serve what was written: directly when ``out`` is a folder the farm searches."""
    import envfarm.servers

    searched = {str(Path(p).resolve()) for p in envfarm.servers.__path__}
    ids = " ".join(env_ids)
    if str(out.resolve()) in searched:
        _say(f"serve it: envfarm serve {ids}")
    else:
        _say(f"serve it: ENVFARM_ENV_PATH={out.resolve()} envfarm serve {ids}")


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
        timeout: Timeout = 600.0,
        retries: Retries = 6,
        call_seconds: CallSeconds = 5.0,
    ) -> None:
        llm_options = {
            "provider": provider,
            "model": model,
            "base_url": base_url,
            "recording": recording,
            "price_in": price_in,
            "price_out": price_out,
            "concurrency": concurrency,
            "budget": budget_usd,
            "timeout": timeout,
            "retries": retries,
            "call_seconds": call_seconds,
        }
        options = {
            "work": work,
            "out": out,
            "corpus": corpus,
            "corpus_limit": corpus_limit,
            "envs": envs,
            "scenarios": scenarios,
            "max_repairs": max_repairs,
        }
        try:
            _run(stage, llm_options, options)
        except KeyboardInterrupt:  # a second Ctrl-C while the first one was being handled
            _say(f"error: {stage}: interrupted (report: {work / 'report.md'})")
            raise typer.Exit(130) from None

    command.__doc__ = doc
    generate_app.command(stage)(command)


_command("topics", "Judge the corpus and pick environment topics (writes WORK/topics.json).")
_command("skeletons", "Design, write and test each topic's environment code (staged in WORK/staging).")
_command("scenarios", "Write gated scenarios for each accepted environment and publish it to OUT.")
_command("all", "Topics, skeletons and scenarios in one go.")
