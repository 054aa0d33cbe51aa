"""``envfarm report`` on two hand-written runs (tests/agents/fixtures), every number worked out by hand.

run_a (model-a, task mode, 3 trials; its last line is torn, as a killed run leaves it):

| task                     | trials: success (reward)                   | turns   |
|--------------------------|--------------------------------------------|---------|
| library/return-and-pay   | yes (1), yes (1), no (0.5)                 | 4, 4, 6 |
| library/renew-loan       | yes (1), yes (1), yes (1)                  | 3, 3, 3 |
| bank/transfer            | error (no score: 0), no (0.25), no (0.5)   | 1, 5, 7 |
| bank/open-account        | yes (1), no (0.75), yes (1)                | 4, 3, 3 |

success 7/12; mean reward 9/12 = 0.750; turns 46/12 = 3.8;
pass^1 = mean(2/3, 3/3, 0/3, 2/3) = 7/12 = 0.583; pass^2 = mean(1/3, 1, 0, 1/3) = 5/12 = 0.417;
pass^3 = mean(0, 1, 0, 0) = 0.250. library: 5/6, pass^k 0.833 / 0.667 / 0.500; bank: 2/6, 0.333 / 0.167 / 0.000.
Tool errors: bad_json 2, crashed 1, refused 4, schema 2, unknown_tool 2 (11); refusals: no-loan-with-fines 1,
overdraft 2, renewal-limit 1. Tokens: input 4,600, output 460, cache read 600, cache write 200; cost $0.12.

run_b (model-b, conversation mode, 2 trials, lines with only a few fields): success 4/8, mean reward 0.625,
pass^1 = mean(1, 1/2, 0, 1/2) = 0.500, pass^2 = mean(1, 0, 0, 0) = 0.250; it alone has the clinic environment.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO

from envfarm.agents.report import build, pass_hat_k, reward_histogram
from envfarm.agents.run_files import RunError, load_run

FIXTURES = Path(__file__).parent / "fixtures"
RUN_A, RUN_B = FIXTURES / "run_a", FIXTURES / "run_b"


def envfarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envfarm.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_pass_hat_k_is_tau2_benchs() -> None:
    assert pass_hat_k(3, 2, 1) == pytest.approx(2 / 3)
    assert pass_hat_k(3, 2, 2) == pytest.approx(1 / 3)  # C(2,2)/C(3,2)
    assert pass_hat_k(3, 2, 3) == 0
    assert pass_hat_k(4, 3, 2) == pytest.approx(3 / 6)  # C(3,2)/C(4,2)
    assert pass_hat_k(5, 5, 5) == 1
    with pytest.raises(ValueError):
        pass_hat_k(2, 1, 3)


def test_numbers_match_the_hand_computation() -> None:
    a, b = build([load_run(RUN_A), load_run(RUN_B)])
    m = a.overall
    assert (m.episodes, m.tasks, m.successes) == (12, 4, 7)
    assert m.mean_reward == pytest.approx(0.75)
    assert m.pass_hat == pytest.approx({1: 7 / 12, 2: 5 / 12, 3: 0.25})
    assert m.mean_turns == pytest.approx(46 / 12)
    assert m.ended == Counter(agent_done=10, error=1, max_turns=1)
    assert m.tool_calls == 39
    assert m.tool_errors == Counter(bad_json=2, crashed=1, refused=4, schema=2, unknown_tool=2)
    assert m.refusals == Counter({"no-loan-with-fines": 1, "overdraft": 2, "renewal-limit": 1})
    assert m.tokens == {"input": 4600, "output": 460, "cache_read": 600, "cache_write": 200}
    assert m.cost_usd == pytest.approx(0.12)
    assert reward_histogram(m.rewards) == [1, 0, 1, 0, 0, 2, 0, 1, 0, 7]
    library, bank = a.by_env["library"], a.by_env["bank"]
    assert (library.successes, library.episodes, library.mean_reward) == (5, 6, pytest.approx(5.5 / 6))
    assert library.pass_hat == pytest.approx({1: 5 / 6, 2: 2 / 3, 3: 0.5})
    assert bank.pass_hat == pytest.approx({1: 1 / 3, 2: 1 / 6, 3: 0.0})
    assert bank.tool_errors == Counter(bad_json=2, refused=2, unknown_tool=1)
    assert set(a.by_env) == {"bank", "library"}

    n = b.overall
    assert (n.episodes, n.successes, n.mean_reward) == (8, 4, 0.625)
    assert n.pass_hat == pytest.approx({1: 0.5, 2: 0.25})
    assert n.user_tokens == {"input": 400, "output": 40, "cache_read": 0, "cache_write": 0}
    assert n.tool_errors == Counter(schema=1)
    assert set(b.by_env) == {"bank", "clinic", "library"}


def test_torn_line_is_skipped_with_a_warning_naming_file_and_line() -> None:
    run = load_run(RUN_A)
    assert len(run.episodes) == 12
    assert any(
        w.startswith(f"{RUN_A / 'results.jsonl'} line 13: not valid JSON") and "skipped" in w for w in run.warnings
    )


def _rows(stdout: str, label: str) -> list[list[str]]:
    """The cells of every rich table row whose first cell is ``label``."""
    out = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] == label:
            out.append(cells[1:])
    return out


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.titles: list[str] = []
        self.cells: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title":
            self.titles.append(data)
        if self._in and self._in[-1] in ("td", "th"):
            self.cells.append(data)


def test_report_prints_the_table_and_writes_markdown_and_html(tmp_path: Path) -> None:
    run = envfarm("report", str(RUN_A), str(RUN_B), "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert "results.jsonl line 13: not valid JSON" in run.stderr

    # The printed tables: one column per run.
    out = run.stdout
    assert _rows(out, "all environments") == [["58.3% (7/12)", "50.0% (4/8)"]]
    assert _rows(out, "bank")[0] == ["33.3% (2/6)", "0.0% (0/2)"]
    assert _rows(out, "clinic")[0] == ["-", "50.0% (1/2)"]
    # Overall first, then bank, clinic, library.
    assert _rows(out, "mean reward") == [["0.750", "0.625"], ["0.583", "0.250"], ["-", "0.500"], ["0.917", "0.875"]]
    assert _rows(out, "pass^1")[0] == ["0.583", "0.500"]
    assert _rows(out, "pass^2")[0] == ["0.417", "0.250"]
    assert _rows(out, "pass^3") == [["0.250", "-"], ["0.000", "-"], ["0.500", "-"]]
    assert _rows(out, "mean turns")[0] == ["3.8", "2.0"]
    assert _rows(out, "tool errors: refused")[0] == ["4", "0"]
    assert _rows(out, "refusals: overdraft")[0] == ["2", "0"]
    assert _rows(out, "tokens: input")[0] == ["4,600", "2,400"]
    assert _rows(out, "cost")[0] == ["$0.1200", "$0.1600"]
    assert _rows(out, "ended: error")[0] == ["1", "0"]

    # report.md: the same tables in Markdown.
    md = (tmp_path / "report.md").read_text()
    assert "| all environments | 58.3% (7/12) | 50.0% (4/8) |" in md
    overall = md.split("## Overall (all environments)")[1].split("## ")[0]
    for row in (
        "| pass^1 | 0.583 | 0.500 |",
        "| pass^2 | 0.417 | 0.250 |",
        "| pass^3 | 0.250 | - |",
        "| tool errors: bad_json | 2 | 0 |",
        "| refusals: renewal-limit | 1 | 0 |",
        "| user tokens: input | 0 | 400 |",
    ):
        assert row in overall, row
    bank = md.split("## Environment: bank")[1].split("## ")[0]
    assert "| pass^2 | 0.167 | 0.000 |" in bank and "| success rate | 33.3% (2/6) | 0.0% (0/2) |" in bank
    assert "C(c, k) / C(n, k)" in md

    # report.html: self-contained, three plots as inline SVG, the numbers in tables and tooltips.
    html = (tmp_path / "report.html").read_text()
    page = _Page()
    page.feed(html)
    svgs = [attrs.get("id") for tag, attrs in page.tags if tag == "svg"]
    assert svgs == ["plot-success-by-env", "plot-pass-hat-k", "plot-reward-histogram"]
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "img", "iframe")]
    assert not re.search(r"\b(src|href)=|https?://|@import|url\(", html)
    titles = set(page.titles)
    assert "bank - model-a: success 33.3% (2/6)" in titles
    assert "all environments - model-b: success 50.0% (4/8)" in titles
    assert "model-a: pass^3 = 0.250" in titles and "model-b: pass^2 = 0.250" in titles
    assert "model-a: reward [0.9, 1.0]: 7 episodes" in titles
    assert "model-b: reward [0.0, 0.1): 2 episodes" in titles
    assert {"0.583", "0.417", "0.167", "$0.1200", "4,600"} <= set(page.cells)


def test_default_out_is_the_first_run_dir_and_json_has_the_numbers(tmp_path: Path) -> None:
    shutil.copytree(RUN_A, tmp_path / "run_a")
    run = envfarm("report", str(tmp_path / "run_a"), "--json")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run_a" / "report.md").is_file() and (tmp_path / "run_a" / "report.html").is_file()
    data = json.loads(run.stdout)
    (a,) = data["runs"]
    assert a["model"] == "model-a" and a["mode"] == "task" and a["trials"] == 3
    assert a["overall"]["pass_hat_k"] == pytest.approx({"1": 7 / 12, "2": 5 / 12, "3": 0.25})
    assert a["environments"]["bank"]["refusals"] == {"overdraft": 2}


def test_unequal_trials_cap_k_and_warn(tmp_path: Path) -> None:
    lines = [
        {"env": "e", "scenario": "s1", "trial": t, "score": {"reward": 1.0, "success": True}} for t in range(3)
    ] + [{"env": "e", "scenario": "s2", "trial": t, "score": {"reward": 0.0, "success": t == 0}} for t in range(2)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (r,) = build([load_run(tmp_path)])
    assert r.overall.pass_hat == pytest.approx({1: (1 + 0.5) / 2, 2: (1 + 0) / 2})
    assert any("between 2 and 3 trials" in w for w in r.warnings)
    assert any("run.json: missing" in w for w in r.warnings)


def test_a_repeated_episode_counts_once_the_later_line_wins(tmp_path: Path) -> None:
    lines = [
        {"env": "e", "scenario": "s", "trial": 0, "score": {"reward": 0.0, "success": False}},
        {"env": "e", "scenario": "s", "trial": 0, "score": {"reward": 1.0, "success": True}},
    ]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = load_run(tmp_path)
    assert [e.success for e in run.episodes] == [True]
    assert any("line 2: e/s trial 0 again" in w for w in run.warnings)


def test_bad_input_is_a_clear_error_without_a_traceback(tmp_path: Path) -> None:
    missing = envfarm("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such run directory" in missing.stderr
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    no_results = envfarm("report", str(empty_dir))
    assert no_results.returncode == 2 and "no results.jsonl" in no_results.stderr
    torn = tmp_path / "torn"
    torn.mkdir()
    (torn / "results.jsonl").write_text('{"env": "library", "scen')
    nothing = envfarm("report", str(torn))
    assert nothing.returncode == 2 and "no finished episode" in nothing.stderr
    assert "line 1: not valid JSON" in nothing.stderr
    for run in (missing, no_results, nothing):
        assert "Traceback" not in run.stderr
    with pytest.raises(RunError, match="not a directory"):
        load_run(torn / "results.jsonl")
