"""Final tables sent to the sandbox as splices of the initial ones rebuild exactly."""

from __future__ import annotations

import random

import pytest

from envfarm.validators.sandbox.protocol import apply_splices, splices


@pytest.mark.parametrize("seed", range(40))
def test_splices_rebuild_the_final_table(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        initial = [{"id": k} for k in range(rng.randint(0, 80))]
        final = list(initial)
        for _ in range(rng.randint(0, 6)):
            roll = rng.random()
            if roll < 0.3 and final:
                final[rng.randrange(len(final))] = {"changed": rng.random()}
            elif roll < 0.6:
                final.insert(rng.randint(0, len(final)), {"added": rng.random()})
            elif final:
                del final[rng.randrange(len(final))]
        found = splices(initial, final)
        if found is not None:
            assert apply_splices(initial, found) == final
            assert sum(len(given) for _, _, given in found) * 2 < len(final)  # mostly shared, or sent whole


def test_a_table_read_afresh_is_sent_whole() -> None:
    initial = [{"id": k} for k in range(50)]
    fresh = [dict(row) for row in initial]  # equal rows, but none of the same objects
    assert splices(initial, fresh) is None
