"""Similarity, paraphrase mining and topics of posted texts: answered in the request
within an anonymous budget of model work, or as a job a worker runs for a key.

Both ways run the same ``ANSWERS``: a request with ``budget=PUBLIC_MAX_TOKENS``, a
job with no budget and its progress recorded. A job is checked when it is posted
(a request it could never answer is a 4xx then, not a failed job later), claimed
by one worker at a time, and kept ``JOB_KEEP_SECONDS`` once finished.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from embeddings.encoders import get_encoder
from embeddings.queueing import enqueue, enqueue_on_commit
from faq import similar, topics
from faq.exceptions import NotFound
from faq.models import AnalysisJob, ApiKey

Status = AnalysisJob.Status
Progress = Callable[[float], None] | None


def similarity_answer(
    params: dict[str, Any], *, budget: int | None, progress: Progress = None
) -> dict[str, Any]:
    scores = similar.texts_similarity(
        text=params.get("text"),
        texts=params.get("texts", []),
        pairs=params.get("pairs", []),
        budget=budget,
        progress=progress,
    )
    return {"model": get_encoder().name, "scores": scores}


def paraphrases_answer(
    params: dict[str, Any], *, budget: int | None, progress: Progress = None
) -> dict[str, Any]:
    threshold = params.get("threshold")
    if threshold is None:
        threshold = settings.DUPLICATE_THRESHOLD
    pairs = similar.texts_paraphrases(
        texts=params["texts"],
        threshold=threshold,
        top_k=params.get("top_k", 10),
        budget=budget,
        progress=progress,
    )
    return {
        "model": get_encoder().name,
        "threshold": threshold,
        "count": len(pairs),
        "pairs": [p._asdict() for p in pairs[: params.get("limit", 1000)]],
    }


def clusters_answer(
    params: dict[str, Any], *, budget: int | None, progress: Progress = None
) -> dict[str, Any]:
    found = topics.texts_topics(
        texts=params["texts"],
        threshold=params.get("threshold"),
        min_size=params.get("min_size"),
        budget=budget,
        progress=progress,
    )
    return {
        "model": get_encoder().name,
        "threshold": found.threshold,
        "min_size": found.min_size,
        "topics": [
            {
                "size": topic.size,
                "labels": topic.labels,
                "representatives": topic.representatives,
                "members": topic.members,
            }
            for topic in found.topics
        ],
        "unclustered": found.unclustered,
    }


ANSWERS: dict[str, Callable[..., dict[str, Any]]] = {
    AnalysisJob.Kind.SIMILARITY: similarity_answer,
    AnalysisJob.Kind.PARAPHRASES: paraphrases_answer,
    AnalysisJob.Kind.CLUSTERS: clusters_answer,
}
CHECKS: dict[str, Callable[[dict[str, Any]], object]] = {
    AnalysisJob.Kind.SIMILARITY: lambda p: similar.similarity_check(
        text=p.get("text"), texts=p.get("texts", []), pairs=p.get("pairs", [])
    ),
    AnalysisJob.Kind.PARAPHRASES: lambda p: similar.paraphrases_check(texts=p["texts"]),
    AnalysisJob.Kind.CLUSTERS: lambda p: topics.topics_check(texts=p["texts"]),
}


def job_create(*, kind: str, params: dict[str, Any], key: ApiKey) -> AnalysisJob:
    """Check the request now, then queue it for a worker."""
    from faq.tasks import analysis_run

    CHECKS[kind](params)
    job = AnalysisJob.objects.create(kind=kind, params=params, api_key=key)
    enqueue_on_commit(analysis_run, job.pk)
    return job


def job_get(*, pk: int, key: ApiKey) -> AnalysisJob:
    """A job of ``key``'s: another key's jobs are as if they did not exist."""
    job = AnalysisJob.objects.filter(pk=pk, api_key=key).first()
    if job is None:
        raise NotFound(f"There is no job {pk} of this API key.")
    return job


def job_run(*, job_id: int) -> None:
    """Run a queued job (or one whose worker died) once more, up to
    ``JOB_MAX_ATTEMPTS`` deliveries; a later delivery of a finished job does nothing."""
    claimed = AnalysisJob.objects.filter(
        pk=job_id,
        status__in=[Status.QUEUED, Status.RUNNING],
        attempts__lt=settings.JOB_MAX_ATTEMPTS,
    ).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        progress=0.0,
        updated_at=timezone.now(),
    )
    if not claimed:
        _job_fail(
            Q(pk=job_id, status=Status.RUNNING),
            f"The worker stopped while running it {settings.JOB_MAX_ATTEMPTS} times.",
        )
        return
    job = AnalysisJob.objects.get(pk=job_id)

    def progress(done: float) -> None:
        AnalysisJob.objects.filter(pk=job_id).update(
            progress=round(done, 4), updated_at=timezone.now()
        )

    result = ANSWERS[job.kind](job.params, budget=None, progress=progress)
    AnalysisJob.objects.filter(pk=job_id, status=Status.RUNNING).update(
        status=Status.DONE,
        progress=1.0,
        result=result,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def job_fail(*, job_id: int, message: str) -> None:
    _job_fail(Q(pk=job_id), message)


def _job_fail(where: Q, message: str) -> None:
    now = timezone.now()
    AnalysisJob.objects.filter(where).exclude(status=Status.DONE).update(
        status=Status.FAILED, error=message, finished_at=now, updated_at=now
    )


def jobs_sweep() -> tuple[int, int]:
    """Queue again jobs whose message was lost or whose worker died (nothing has
    happened to them for ``JOB_STALE_SECONDS``); delete finished ones past
    ``JOB_KEEP_SECONDS``. Returns (queued, deleted)."""
    from faq.tasks import analysis_run

    now = timezone.now()
    stale = AnalysisJob.objects.filter(
        status__in=[Status.QUEUED, Status.RUNNING],
        updated_at__lt=now - timedelta(seconds=settings.JOB_STALE_SECONDS),
    )
    queued = 0
    for pk in stale.values_list("pk", flat=True):
        AnalysisJob.objects.filter(pk=pk).update(updated_at=now)
        queued += enqueue(analysis_run, pk)
    deleted, _ = AnalysisJob.objects.filter(
        finished_at__lt=now - timedelta(seconds=settings.JOB_KEEP_SECONDS)
    ).delete()
    return queued, deleted


def job_out(job: AnalysisJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "error": job.error,
        "result": job.result,
    }
