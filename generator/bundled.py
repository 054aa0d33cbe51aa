"""The task corpora and recorded runs that ship with envfarm (``envfarm/generator/data/``), by name.

``--corpus`` and ``--recording`` take a path or one of these names, so a fresh install can run
the generator without fetching anything: ``envfarm generate all --provider replay --recording
fitness-classes`` plays a recorded run with no key and no network. data/README.md says where
each file comes from and under which licence.
"""

from __future__ import annotations

from pathlib import Path

from envfarm.generator.llm.errors import LLMError
from envfarm.generator.llm.replay import read_recording_file

from .failures import InputError

DATA = Path(__file__).parent / "data"
DEFAULT_CORPUS = "api-bank-lv3"
CORPUS_SUFFIX = ".jsonl"
RECORDING_SUFFIX = ".recording.json"


def corpora() -> list[str]:
    """Names of the bundled corpora."""
    return sorted(p.name.removesuffix(CORPUS_SUFFIX) for p in DATA.glob(f"*{CORPUS_SUFFIX}"))


def recordings() -> list[str]:
    """Names of the bundled recorded runs."""
    return sorted(p.name.removesuffix(RECORDING_SUFFIX) for p in DATA.glob(f"*{RECORDING_SUFFIX}"))


def corpus_path(value: str | Path) -> Path:
    """A corpus file: ``value`` itself when it exists, else the bundled corpus of that name."""
    path = Path(value)
    if path.exists():
        return path
    bundled = DATA / f"{str(value).removesuffix(CORPUS_SUFFIX)}{CORPUS_SUFFIX}"
    if "/" not in str(value) and bundled.is_file():
        return bundled
    raise InputError(f"{value}: no such corpus file (bundled corpora: {', '.join(corpora())})")


def recording_path(value: str | Path) -> Path:
    """A recording: ``value`` itself (a cache folder or a recording file) when it exists, else a bundled one."""
    path = Path(value)
    if path.exists():
        return path
    bundled = DATA / f"{str(value).removesuffix(RECORDING_SUFFIX)}{RECORDING_SUFFIX}"
    if "/" not in str(value) and bundled.is_file():
        return bundled
    raise InputError(f"{value}: no such recording (a run's cache folder, or bundled: {', '.join(recordings())})")


def recording_corpus(recording: Path) -> Path | None:
    """The corpus a recording file was made on (``"corpus"``: a bundled name), if it names one.

    Replaying a recording on another corpus could only miss its first answer, so when
    ``--corpus`` is not given, a replay uses the recording's.
    """
    if not recording.is_file():
        return None
    try:
        name = read_recording_file(recording).get("corpus")
    except LLMError as e:
        raise InputError(str(e)) from None
    return corpus_path(name) if isinstance(name, str) else None
