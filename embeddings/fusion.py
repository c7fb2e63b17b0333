"""Fusing a dense and a keyword ranking into one.

Each leg maps key -> score for the candidates it found: the dense leg cosine
similarity, the keyword leg BM25 coverage (BM25 over the query's summed idf, see
``keywords.search``). ``weight`` is the keyword leg's weight in every method.

``boost`` (the default) keeps the cosine and adds the keyword coverage as a bonus
of at most about ``weight``: both are on absolute scales, so the bonus reorders
items that are nearly as close in meaning and cannot overturn a clear semantic
winner. The others are what search engines ship, for comparison and per-request
choice: reciprocal rank fusion (Elasticsearch, Vespa, Weaviate rankedFusion),
min-max normalised linear combination (Weaviate relativeScoreFusion,
Elasticsearch linear) and z-score normalisation (Weaviate distribution-based).
They rescale each leg per query, so a weak keyword match gets full weight when it
is the best there is: ``bench/fusion.py`` shows what that costs on FAQ paraphrases.
"""

import math
from collections.abc import Callable, Hashable, Mapping
from typing import NamedTuple

Leg = Mapping[Hashable, float]
RRF_K = 60


class Fused(NamedTuple):  # a tuple: a search fuses hundreds
    score: float
    how: str = ""  # how the score was computed, if asked to explain


def boost(
    dense: Leg, keyword: Leg, *, weight: float, explain: bool = False
) -> dict[Hashable, Fused]:
    """cosine + weight * coverage; ``dense`` must hold every candidate's cosine."""
    fused: dict[Hashable, Fused] = {}
    for key, cosine in dense.items():
        coverage = keyword.get(key, 0.0)
        score = cosine + weight * coverage
        how = f"boost: {cosine:.4f} + {weight:g}*{coverage:.4f}" if explain else ""
        fused[key] = Fused(score, how)
    return fused


def rrf(
    dense: Leg, keyword: Leg, *, weight: float, explain: bool = False
) -> dict[Hashable, Fused]:
    ranks = [_ranks(dense), _ranks(keyword)]
    shares = [1 - weight, weight]
    fused: dict[Hashable, Fused] = {}
    for key in set(dense) | set(keyword):
        parts = [
            (share, rank[key])
            for share, rank in zip(shares, ranks, strict=True)
            if key in rank
        ]
        score = sum(share / (RRF_K + rank) for share, rank in parts)
        how = " + ".join(f"{share:g}/({RRF_K}+{rank})" for share, rank in parts)
        fused[key] = Fused(score, f"rrf: {how}" if explain else "")
    return fused


def relative(
    dense: Leg, keyword: Leg, *, weight: float, explain: bool = False
) -> dict[Hashable, Fused]:
    return _linear(
        dense,
        keyword,
        weight=weight,
        normalise=_min_max,
        name="relative",
        explain=explain,
    )


def distribution(
    dense: Leg, keyword: Leg, *, weight: float, explain: bool = False
) -> dict[Hashable, Fused]:
    return _linear(
        dense,
        keyword,
        weight=weight,
        normalise=_z_score,
        name="distribution",
        explain=explain,
    )


def _linear(
    dense: Leg,
    keyword: Leg,
    *,
    weight: float,
    normalise: Callable[[Leg], dict[Hashable, float]],
    name: str,
    explain: bool,
) -> dict[Hashable, Fused]:
    legs = [normalise(dense), normalise(keyword)]
    shares = [1 - weight, weight]
    fused: dict[Hashable, Fused] = {}
    for key in set(dense) | set(keyword):
        parts = [
            (share, leg.get(key, 0.0)) for share, leg in zip(shares, legs, strict=True)
        ]
        score = sum(share * value for share, value in parts)
        how = " + ".join(f"{share:g}*{value:.4f}" for share, value in parts)
        fused[key] = Fused(score, f"{name}: {how}" if explain else "")
    return fused


def _ranks(leg: Leg) -> dict[Hashable, int]:
    ordered = sorted(leg, key=lambda key: -leg[key])
    return {key: rank for rank, key in enumerate(ordered, start=1)}


def _min_max(leg: Leg) -> dict[Hashable, float]:
    if not leg:
        return {}
    low, high = min(leg.values()), max(leg.values())
    span = high - low
    return {key: (score - low) / span if span else 1.0 for key, score in leg.items()}


def _z_score(leg: Leg) -> dict[Hashable, float]:
    """Scores to [0, 1] over mean ± 3 standard deviations, as Weaviate's DBSF."""
    if not leg:
        return {}
    values = list(leg.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
    low, high = mean - 3 * sd, mean + 3 * sd
    return {key: min(max((s - low) / (high - low), 0.0), 1.0) for key, s in leg.items()}


METHODS: dict[str, Callable[..., dict[Hashable, Fused]]] = {
    "boost": boost,
    "rrf": rrf,
    "relative": relative,
    "distribution": distribution,
}
# The keyword weight each method uses unless told otherwise (bench/fusion.py).
DEFAULT_WEIGHTS = {"boost": 0.15, "rrf": 0.3, "relative": 0.3, "distribution": 0.3}
