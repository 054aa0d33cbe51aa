"""Topic mining (the first half of EnvScaler's SkelBuilder): which environments a task corpus calls for.

The LLM judges the corpus in batches: is a task stateful, which environment
would serve it, how useful and how modelable that environment is. Stateful
tasks from environments rated at least ``MIN_SCORE`` on both are grouped by the
environment's name, near-duplicate environments are merged by the similarity of
their descriptions (``dedupe``), and the topics backed by the most tasks win.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from envfarm.core.environments import ENV_ID_PATTERN, bundled

from . import prompts, schemas
from .asking import Asker, Problem, Tally
from .dedupe import Embedder, group_near_duplicates
from .failures import InputError
from .skeletons import Topic

BATCH = 20  # tasks judged per call: long enough to amortise the system prompt, short enough to judge well
MIN_SCORE = 3  # usefulness and modelability (1-5) a topic needs


def read_corpus(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    """Tasks from a JSONL corpus (``{"id", "task"}`` per line); errors name the line."""
    if not path.is_file():
        raise InputError(f"{path}: no such corpus file")
    tasks: list[dict[str, str]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("task"), str) or not row["task"].strip():
                raise InputError(f'{path}:{n}: each line needs a non-empty "task" string')
            tasks.append({"id": str(row.get("id", f"line-{n}")), "task": row["task"].strip()})
            if limit is not None and len(tasks) >= limit:
                break
    if not tasks:
        raise InputError(f"{path}: no tasks")
    return tasks


async def judge(asker: Asker, tally: Tally, tasks: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The LLM's judgement of every task, batch by batch."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(tasks), BATCH):
        batch = tasks[start : start + BATCH]
        ids = [t["id"] for t in batch]

        async def accept(data: dict[str, Any], ids: list[str] = ids) -> list[dict[str, Any]]:
            got = [j["task_id"] for j in data["judgements"]]
            missing = [i for i in ids if i not in got]
            if missing:
                raise Problem(f"no judgement for {missing}; judge every request, in order")
            return [j for j in data["judgements"] if j["task_id"] in ids]

        out += await asker.ask(
            tally,
            stage="topics",
            system=prompts.TOPICS_SYSTEM,
            prompt=prompts.topics_prompt(batch),
            schema=schemas.JUDGEMENTS,
            schema_name="submit_judgements",
            accept=accept,
        )
    return out


def pick_topics(
    judgements: list[dict[str, Any]], tasks: list[dict[str, str]], embedder: Embedder, limit: int
) -> tuple[list[Topic], dict[str, Any]]:
    """Group, filter, de-duplicate and rank; returns the topics and the numbers behind them."""
    text = {t["id"]: t["task"] for t in tasks}
    kept = [
        j
        for j in judgements
        if j["stateful"] and j["usefulness"] >= MIN_SCORE and j["modelability"] >= MIN_SCORE and j["task_id"] in text
    ]
    by_name: dict[str, Topic] = {}
    for j in kept:
        topic = by_name.setdefault(j["environment"], Topic(j["environment"], j["title"], j["description"], []))
        topic.tasks.append(text[j["task_id"]])
    names = sorted(by_name)
    groups = group_near_duplicates([f"{by_name[n].title}. {by_name[n].description}" for n in names], embedder)
    merged: list[Topic] = []
    for group in groups:
        members = sorted((by_name[names[i]] for i in group), key=lambda t: (-len(t.tasks), t.id))
        lead = members[0]
        for other in members[1:]:
            lead.tasks += other.tasks
        merged.append(lead)
    merged.sort(key=lambda t: (-len(t.tasks), t.id))
    taken = set(bundled())
    for topic in merged:
        topic.id = free_env_id(topic.id, taken)
        taken.add(topic.id)
    numbers = {
        "tasks": len(tasks),
        "judged": len(judgements),
        "stateful": sum(1 for j in judgements if j["stateful"]),
        "kept": len(kept),
        "environments_named": len(by_name),
        "after_dedupe": len(merged),
        "merged_away": len(by_name) - len(merged),
        "embedder": embedder.name,
        "threshold": embedder.threshold,
        "chosen": min(limit, len(merged)),
    }
    return merged[:limit], numbers


def free_env_id(wanted: str, taken: set[str]) -> str:
    """A valid environment id that no bundled (or already chosen) environment has."""
    base = wanted if ENV_ID_PATTERN.match(wanted) else "env_" + "".join(c for c in wanted.lower() if c.isalnum())[:30]
    env_id, n = base, 1
    while env_id in taken:
        n += 1
        env_id = f"{base[:36]}_{n}"
    return env_id


def save_topics(path: Path, topics: list[Topic], numbers: dict[str, Any]) -> None:
    path.write_text(
        json.dumps({"numbers": numbers, "topics": [asdict(t) for t in topics]}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


def load_topics(path: Path) -> list[Topic]:
    """The topics an earlier ``envfarm generate topics`` chose; InputError naming the file when it cannot be read."""
    if not path.is_file():
        raise InputError(f"{path}: no topics yet; run `envfarm generate topics` first")
    try:
        return [Topic(**t) for t in json.loads(path.read_text(encoding="utf-8"))["topics"]]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(
            f"{path}: not a topics file ({type(e).__name__}: {e}); run `envfarm generate topics`"
        ) from None
