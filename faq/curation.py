"""What editors set per collection to steer search: synonyms for the keyword leg,
and answers pinned for a query and the queries that mean the same."""

from collections.abc import Sequence

import numpy as np

from embeddings.encoders import encode_query
from embeddings.index.keywords import query_terms
from faq.models import Collection, Faq, PinnedAnswer


def synonym_groups(collection: Collection) -> list[list[str]]:
    """The collection's groups: a line each, its phrases comma separated."""
    groups = []
    for line in collection.synonyms.splitlines():
        phrases = [p.strip() for p in line.split(",") if p.strip()]
        if len(phrases) > 1:
            groups.append(phrases)
    return groups


def synonyms_matched(q: str, collections: Sequence[Collection]) -> list[str]:
    """For each group of which the query holds a phrase (all its analysed terms),
    the group's other phrases: what the keyword leg matches too."""
    terms = set(query_terms(q))
    extra: list[str] = []
    for collection in collections:
        for group in synonym_groups(collection):
            held = [
                set(query_terms(p)) <= terms and bool(query_terms(p)) for p in group
            ]
            if any(held):
                extra += [p for p, h in zip(group, held, strict=True) if not h]
    return extra


def pin_matching(q: str, collections: Sequence[Collection]) -> tuple[Faq, float] | None:
    """The published FAQ pinned for this query, or for the pinned query closest
    in meaning to it if at least its ``similarity``, with that cosine (1 for the
    same words); None when no pin applies."""
    if not any(c.pinned for c in collections):  # no query for the pins then
        return None
    pins = list(
        PinnedAnswer.objects.filter(
            collection__in=collections, faq__published=True
        ).select_related("faq__collection")
    )
    if not pins:
        return None
    asked = q.lower()
    exact = [pin for pin in pins if " ".join(pin.query.lower().split()) == asked]
    if exact:
        return exact[0].faq, 1.0
    vector = encode_query(q)
    cosines = [float(np.dot(vector, encode_query(pin.query))) for pin in pins]
    best = int(np.argmax(cosines))
    if cosines[best] >= pins[best].similarity:
        return pins[best].faq, cosines[best]
    return None
