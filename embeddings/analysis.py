"""Vector math over many texts at once: cosine scores, paraphrase mining, and
batched nearest-neighbour search in a partition's index.

Knows nothing of FAQs. Pairs are mined with blocked matrix products, the way
``sentence_transformers.util.paraphrase_mining_embeddings`` does it, but in numpy and
without its Python loop over every candidate: each block keeps its rows' ``top_k``
neighbours with ``np.argpartition`` and the pairs above the threshold are selected,
deduplicated and sorted as arrays. Memory stays at one block of scores whatever the
number of vectors; the matrix products are most of the time.
"""

import sys
from typing import NamedTuple

import numpy as np


class Pair(NamedTuple):
    first: int  # row index, always below ``second``
    second: int
    score: float  # cosine similarity


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def cosine_scores(one: np.ndarray, many: np.ndarray) -> np.ndarray:
    """Cosine similarity of one vector to each row of ``many``."""
    return unit_rows(many) @ unit_rows(one.reshape(1, -1))[0]


def cosine_pairs(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``left`` to the same row of ``right``."""
    return np.einsum("ij,ij->i", unit_rows(left), unit_rows(right))


def mean_vector(matrix: np.ndarray) -> np.ndarray:
    """One unit vector for several (a document's chunks): their renormalised mean."""
    return unit_rows(unit_rows(matrix).mean(axis=0, keepdims=True))[0]


def pairs_mine(
    matrix: np.ndarray,
    *,
    threshold: float,
    top_k: int = 100,
    query_block: int = 1024,
    corpus_block: int = 16384,
) -> list[Pair]:
    """Pairs of rows at least ``threshold`` alike, most similar first.

    A pair is kept when either row has the other among its ``top_k`` nearest
    (itself excluded): a cap on pairs per row, so that a thousand copies of one
    text cost a thousand rows' worth of pairs, not half a million. With ``top_k``
    at least the number of rows minus one, every pair above the threshold is found.
    """
    matrix = unit_rows(matrix)
    count = len(matrix)
    if count < 2 or top_k < 1:
        return []
    keep = min(top_k, count - 1)
    found = [
        _block_pairs(matrix, start, query_block, corpus_block, threshold, keep)
        for start in range(0, count, query_block)
    ]
    firsts, seconds, scores = (
        np.concatenate(part) for part in zip(*found, strict=True)
    )
    return _pairs_sorted(firsts, seconds, scores, count)


def _block_pairs(
    matrix: np.ndarray,
    start: int,
    query_block: int,
    corpus_block: int,
    threshold: float,
    keep: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, score) of the block's rows' ``keep`` best neighbours at least
    ``threshold`` alike, over every corpus block."""
    rows = matrix[start : start + query_block]
    diagonal = np.arange(len(rows))
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for offset in range(0, len(matrix), corpus_block):
        scores = block_scores(rows, matrix[offset : offset + corpus_block])
        own = diagonal + start - offset  # a row's own column in this block
        inside = (own >= 0) & (own < scores.shape[1])
        scores[diagonal[inside], own[inside]] = -np.inf
        found.append(_above(scores, threshold, keep, offset))
    row, column, score = (np.concatenate(part) for part in zip(*found, strict=True))
    row, column, score = _cap_per_row(row, column, score, keep)
    return row + start, column, score


def block_scores(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``rows @ others.T``, with torch's matrix product when the process has already
    loaded torch (the torch backend does): twice numpy's OpenBLAS on our CPUs
    (bench/RESULTS.md). Never imported for this alone: an ONNX process (the
    default) stays without torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        return rows @ others.T
    product = torch.from_numpy(rows) @ torch.from_numpy(others).T
    return np.asarray(product.numpy())


def _above(
    scores: np.ndarray, threshold: float, keep: int, offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block's scores at least ``threshold``: all of them when that is few (a
    high threshold, the usual case), else each row's ``keep`` best."""
    hits = scores >= threshold
    if scores.shape[1] <= keep or hits.sum() <= keep * len(scores):
        row, column = np.nonzero(hits)
        return row, column + offset, scores[row, column]
    columns = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
    best = np.take_along_axis(scores, columns, axis=1)
    row, position = np.nonzero(best >= threshold)
    return row, columns[row, position] + offset, best[row, position]


def _cap_per_row(
    row: np.ndarray, column: np.ndarray, score: np.ndarray, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Only each row's ``keep`` best entries."""
    order = np.lexsort((-score, row))
    row, column, score = row[order], column[order], score[order]
    starts = np.searchsorted(row, row, side="left")
    rank = np.arange(len(row)) - starts
    kept = rank < keep
    return row[kept], column[kept], score[kept]


def _pairs_sorted(
    firsts: np.ndarray, seconds: np.ndarray, scores: np.ndarray, count: int
) -> list[Pair]:
    """(i, j) and (j, i) as one pair i < j with the higher score, best first; ties
    in a stable order (by i, then j)."""
    low, high = np.minimum(firsts, seconds), np.maximum(firsts, seconds)
    keys = low * count + high
    order = np.lexsort((-scores, keys))  # by key, best score first within a key
    keys, scores = keys[order], scores[order]
    first_of_key = np.ones(len(keys), dtype=bool)
    first_of_key[1:] = keys[1:] != keys[:-1]
    keys, scores = keys[first_of_key], scores[first_of_key]
    order = np.lexsort((keys, -scores))
    return [
        Pair(int(key // count), int(key % count), float(score))
        for key, score in zip(keys[order], scores[order], strict=True)
    ]
