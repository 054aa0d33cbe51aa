"""Which tables a check reads, told from its source: what the sandbox sends it, and nothing more."""

from __future__ import annotations

import textwrap

import pytest

from envfarm.core.environments import bundled, load_environment
from envfarm.validators.checks import may_change_views, tables_read


def read(source: str) -> frozenset[str] | None:
    return tables_read(textwrap.dedent(source))


@pytest.mark.parametrize(
    ("source", "tables"),
    [
        ("def check(initial, final):\n    return final['loans'] == initial['loans']", {"loans"}),
        ("def check(a, b):\n    return b.get('fines', []) == a.get('fines')", {"fines"}),
        ("def check_func(final_state):\n    return final_state['x'] != initial_state['y']", {"x", "y"}),
        ("def check(initial, final):\n    return True", set()),
        (
            """
            def check(initial, final):
                for table in ['loans', 'holds']:
                    if [r['id'] for r in initial[table]] != [r['id'] for r in final[table]]:
                        return False
                return all(final[t] for t in ('fines',))
            """,
            {"loans", "holds", "fines"},
        ),
        (
            """
            def check(initial, final):
                for table, col in [('accounts', 'id'), ('cards', 'account_id')]:
                    if [r[col] for r in initial[table]] != [r[col] for r in final[table]]:
                        return False
                return True
            """,
            {"accounts", "cards"},
        ),
        (
            """
            def check(initial, final):
                def theirs(view):
                    return [b for b in view['bookings'] if b['id'] > 3], view['bags']
                pick = lambda v: v['payments']
                return theirs(initial) == theirs(final) and pick(final) == pick(initial)
            """,
            {"bookings", "bags", "payments"},
        ),
    ],
)
def test_the_tables_a_check_names(source: str, tables: set[str]) -> None:
    assert read(source) == tables


@pytest.mark.parametrize(
    "source",
    [
        "def check(initial, final):\n    return len(final) == 3",  # the view itself, not a table of it
        "def check(initial, final):\n    return 'loans' in final",
        "def check(initial, final):\n    return all(rows for rows in final.values())",
        "def check(initial, final):\n    t = 'lo' + 'ans'\n    return final[t] == []",
        "def check(initial, final):\n    for t in ['a', 'b']:\n        pass\n    t = 'c'\n    return final[t] == []",
        "def check(initial, final):\n    final = initial\n    return final['a'] == []",
        "def check(initial, final):\n    return helper(final)",  # a function of somebody else's
        "def check(initial, final):\n    f = final\n    return f['a'] == []",
        "def check(initial, final):\n    return locals()['final']['a'] == []",
        "def check(initial, final):\n    return eval('final')['a'] == []",
        "import sys\ndef check(initial, final):\n    return sys._getframe().f_locals['final']['a'] == []",
        "def check(*views):\n    return views[1]['a'] == []",
        "def check(initial, final):\n    def h(*v):\n        return v[0]['a']\n    return h(final) == []",
        "def check(initial, final):\n    def h(v):\n        return v\n    return h(final)['a'] == []",  # returned
        "def check(initial, final):\n    return final[0]",
        "def check(initial, final:\n    return True",  # a syntax error: the sandbox reports it
        "x = (" * 300 + ")" * 300,
    ],
)
def test_a_check_whose_text_does_not_say_gets_every_table(source: str) -> None:
    assert tables_read(source) is None


def test_every_bundled_check_says_which_tables_it_reads() -> None:
    """So scoring a bundled scenario sends only what its checks read (the quality gate, run on every
    bundled scenario, shows they still pass and fail as they did with every table)."""
    vague = [
        (env_id, scenario.id, check.id)
        for env_id in bundled()
        for scenario in load_environment(env_id).scenarios.values()
        for check in scenario.checks
        if check.kind == "state" and check.code is not None and tables_read(check.code) is None
    ]
    assert vague == []


@pytest.mark.parametrize(
    "source",
    [
        "def check(initial, final):\n    final['loans'].sort(key=len)\n    return True",
        "def check(initial, final):\n    final['loans'][0]['status'] = 'x'\n    return True",
        "def check(initial, final):\n    del initial['loans'][0]\n    return True",
        "def check(initial, final):\n    rows = final['loans']\n    rows += [{}]\n    return True",
        "from heapq import heapify as tidy\ndef check(initial, final):\n    tidy(final['loans'])\n    return True",
        "import random\ndef check(initial, final):\n    random.shuffle(final['loans'])\n    return True",
        "import operator\ndef check(initial, final):\n    operator.setitem(final, 'loans', [])\n    return True",
        "def check(initial, final):\n    final['loans'].__setitem__(0, None)\n    return True",
        "def check(initial, final):\n    list(map(dict.clear, final['loans']))\n    return True",
        "def check(initial, final):\n    return eval('final.clear()')",
        "def check(initial, final:\n    return True",
    ],
)
def test_a_check_that_may_change_its_views_gets_copies(source: str) -> None:
    assert may_change_views(source)


def test_a_check_that_only_reads_shares_the_views() -> None:
    reads = """
    import collections, statistics
    def check(initial, final):
        mine = sorted((r for r in final['loans'] if r['member_id'] == 1), key=lambda r: r['id'])
        counts = collections.Counter(r['status'] for r in mine)
        return counts['returned'] == 1 and statistics.mean([r['id'] for r in mine]) > 0
    """
    assert not may_change_views(textwrap.dedent(reads))


def test_no_bundled_check_needs_copies() -> None:
    """Every bundled check only reads its views, so scoring them copies nothing."""
    changing = [
        (env_id, scenario.id, check.id)
        for env_id in bundled()
        for scenario in load_environment(env_id).scenarios.values()
        for check in scenario.checks
        if check.kind == "state" and check.code is not None and may_change_views(check.code)
    ]
    assert changing == []
