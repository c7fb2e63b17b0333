"""Near-duplicate questions: FAQs whose questions mean the same thing."""

from typing import Any

from django.conf import settings
from django.db import transaction

from embeddings.selectors import chunks_neighbours
from faq.models import DuplicatePair, Faq
from faq.selectors import question_chunks


def duplicates_flag(*, partition: str, chunk_ids: list[int]) -> int:
    """Record pairs between the new question chunks and every question in their
    collection (the same upload included); return how many pairs are new."""
    questions = _question_chunks(chunk_ids)
    if not questions:
        return 0
    threshold = settings.DUPLICATE_THRESHOLD
    found = chunks_neighbours(
        list(questions), partition=partition, k=20, min_score=threshold
    )
    others = _question_chunks([other for _, other, _ in found])
    best: dict[tuple[int, int], float] = {}
    for chunk, other, score in found:
        if other in others and questions[chunk] != others[other]:
            low, high = sorted((questions[chunk], others[other]))
            best[low, high] = max(score, best.get((low, high), -1.0))
    return _record(best)


def _question_chunks(chunk_ids: list[int]) -> dict[int, int]:
    """chunk id -> FAQ id, for the question chunks among ``chunk_ids``."""
    rows = question_chunks().filter(pk__in=chunk_ids)
    return dict(rows.values_list("pk", "source_id"))


def _record(best: dict[tuple[int, int], float]) -> int:
    if not best:
        return 0
    ids = {faq_id for pair in best for faq_id in pair}
    collections = dict(
        Faq.objects.filter(pk__in=ids).values_list("pk", "collection_id")
    )
    pairs = [
        DuplicatePair(
            collection_id=collections[first],
            first_id=first,
            second_id=second,
            similarity=round(similarity, 4),
        )
        for (first, second), similarity in best.items()
        if first in collections and second in collections
    ]
    before = DuplicatePair.objects.count()
    DuplicatePair.objects.bulk_create(pairs, ignore_conflicts=True)
    return DuplicatePair.objects.count() - before


@transaction.atomic
def duplicate_merge(*, pair: DuplicatePair) -> None:
    """Keep the first FAQ; unpublish (not delete) the second, so nothing is lost."""
    pair.second.published = False
    pair.second.save()
    pair.status = DuplicatePair.Status.MERGED
    pair.save(update_fields=["status"])


def duplicate_dismiss(*, pair: DuplicatePair) -> None:
    pair.status = DuplicatePair.Status.DISMISSED
    pair.save(update_fields=["status"])


def on_chunks_indexed(
    sender: Any, *, partition: str, chunk_ids: list[int], **_: Any
) -> None:
    duplicates_flag(partition=partition, chunk_ids=chunk_ids)
