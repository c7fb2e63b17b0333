import sys

import numpy as np
import pytest

from embeddings.analysis import (
    block_scores,
    cosine_pairs,
    cosine_scores,
    mean_vector,
    pairs_mine,
    unit_rows,
)


def brute_force(
    matrix: np.ndarray, *, threshold: float, top_k: int
) -> dict[tuple[int, int], float]:
    """Every pair, scored in one full matrix: (i, j) is kept when j is among i's
    ``top_k`` nearest others or i among j's, and its cosine is at least threshold."""
    matrix = unit_rows(matrix)
    scores = matrix @ matrix.T
    np.fill_diagonal(scores, -np.inf)
    nearest = np.argsort(-scores, axis=1)[:, :top_k]
    pairs: dict[tuple[int, int], float] = {}
    for i, row in enumerate(nearest):
        for j in row:
            if scores[i, j] >= threshold:
                pairs[min(i, j), max(i, j)] = float(scores[i, j])
    return pairs


@pytest.mark.parametrize(
    ("count", "top_k", "query_block", "corpus_block", "threshold"),
    [
        (257, 1000, 64, 100, 0.6),  # every pair above the threshold, uneven blocks
        (257, 3, 50, 77, 0.3),  # the top-k cap, blocks that do not divide the rows
        (101, 5, 7, 2, -1.0),  # corpus blocks narrower than k: every pair capped
        (64, 10, 1024, 16384, 0.5),  # one block
        (2, 1, 1, 1, -1.0),
    ],
)
@pytest.mark.parametrize("product", ["numpy", "torch"])
def test_mined_pairs_equal_brute_force_across_block_boundaries(
    monkeypatch, product, count, top_k, query_block, corpus_block, threshold
):
    if product == "torch":
        import torch  # noqa: F401  (loaded: block products go through it)
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    rng = np.random.default_rng(count + top_k)
    matrix = rng.normal(size=(count, 12)).astype(np.float32)
    found = pairs_mine(
        matrix,
        threshold=threshold,
        top_k=top_k,
        query_block=query_block,
        corpus_block=corpus_block,
    )
    expected = brute_force(matrix, threshold=threshold, top_k=top_k)
    assert expected  # the case tests something
    assert [(p.first, p.second) for p in found] == sorted(
        expected, key=lambda pair: (-expected[pair], pair)
    )
    assert all(p.first < p.second for p in found)
    assert [p.score for p in found] == pytest.approx(
        [expected[p.first, p.second] for p in found], abs=1e-5
    )


def test_mining_finds_planted_duplicates_in_noise():
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(3000, 64)).astype(np.float32)
    matrix[2999] = matrix[5] + 0.01 * rng.normal(size=64)
    matrix[1500] = matrix[1024] * 3  # same direction, other length
    found = pairs_mine(matrix, threshold=0.9, top_k=5, query_block=1000)
    assert [(p.first, p.second) for p in found] == [(1024, 1500), (5, 2999)]
    assert found[0].score == pytest.approx(1.0, abs=1e-5)


def test_mining_needs_two_rows():
    assert pairs_mine(np.ones((1, 4)), threshold=0.0) == []
    assert pairs_mine(np.zeros((0, 4)), threshold=0.0) == []


def test_identical_rows_keep_one_pair_each_way_counted_once():
    matrix = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    [pair] = pairs_mine(matrix, threshold=0.5)
    assert (pair.first, pair.second) == (0, 1) and pair.score == pytest.approx(1.0)


def test_cosines_are_those_of_unit_vectors():
    rng = np.random.default_rng(3)
    one, many = rng.normal(size=5), rng.normal(size=(4, 5))
    expected = many @ one / np.linalg.norm(many, axis=1) / np.linalg.norm(one)
    assert cosine_scores(one, many) == pytest.approx(expected, abs=1e-6)
    left, right = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    expected = [
        a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        for a, b in zip(left, right, strict=True)
    ]
    assert cosine_pairs(left, right) == pytest.approx(expected, abs=1e-6)


def test_mean_vector_is_the_unit_mean_of_unit_rows():
    rows = np.array([[2, 0, 0], [0, 1, 0]], dtype=np.float32)
    assert mean_vector(rows) == pytest.approx([2**-0.5, 2**-0.5, 0], abs=1e-6)


def test_block_products_are_the_same_with_and_without_torch(monkeypatch):
    import torch  # noqa: F401

    rng = np.random.default_rng(5)
    rows = rng.normal(size=(30, 16)).astype(np.float32)
    others = rng.normal(size=(40, 16)).astype(np.float32)
    with_torch = block_scores(rows, others)
    monkeypatch.delitem(sys.modules, "torch")
    assert block_scores(rows, others) == pytest.approx(with_torch, abs=1e-5)
    assert with_torch == pytest.approx(rows @ others.T, abs=1e-5)
