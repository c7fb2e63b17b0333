"""Uploads: files kept in the database, read into a preview, then imported whole.

An upload moves parsing -> ready -> importing -> done (or refused / failed). Each
step is a Celery task that claims the job with a conditional UPDATE counting its
delivery, so that a file which kills the worker every time fails its job; the
import holds the job's row locked, so that a second delivery imports nothing.
A periodic sweep queues again a step whose message was lost.
"""

import contextlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from redis.exceptions import RedisError

from embeddings.models import Chunk
from embeddings.queueing import enqueue_on_commit
from embeddings.selectors import status_counts
from faq.exceptions import ApplicationError, TooLarge
from faq.importers import (
    ImportRefused,
    Limits,
    Row,
    RowError,
    import_rows,
    parse_file,
)
from faq.models import Collection, ImportFile, ImportJob

Status = ImportJob.Status
CACHE_ERRORS = (RedisError, OSError)  # the progress counter's cache away
PREVIEW_ROWS = 10
MAX_REPORTED_ERRORS = 1000


def upload_create(
    *,
    collection: Collection,
    files: list[tuple[str, bytes]],
    user: Any = None,
    skip_invalid: bool = False,
    confirm: bool = False,
) -> ImportJob:
    """Keep the files and queue their reading; the job id is the handle to follow."""
    upload_check_sizes([(name, len(data)) for name, data in files])
    with transaction.atomic():
        job = ImportJob.objects.create(
            collection=collection,
            created_by=user if getattr(user, "pk", None) else None,
            skip_invalid=skip_invalid,
            confirm=confirm,
        )
        ImportFile.objects.bulk_create(
            ImportFile(job=job, name=name[:255], size=len(data), data=data)
            for name, data in files
        )
        _queue_on_commit(Status.PARSING, job.pk)
    return job


def upload_check_sizes(files: list[tuple[str, int]]) -> None:
    if not files:
        raise ApplicationError("Choose at least one file.")
    if len(files) > settings.UPLOAD_MAX_FILES:
        raise TooLarge(f"At most {settings.UPLOAD_MAX_FILES} files at once.")
    for name, size in files:
        if size > settings.UPLOAD_MAX_FILE_BYTES:
            raise TooLarge(
                f"{name} is {_mb(size)}: files may be at most "
                f"{_mb(settings.UPLOAD_MAX_FILE_BYTES)}."
            )
    if sum(size for _, size in files) > settings.UPLOAD_MAX_TOTAL_BYTES:
        raise TooLarge(
            f"The upload is over {_mb(settings.UPLOAD_MAX_TOTAL_BYTES)} in all."
        )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _task_of(status: str) -> Any:
    """The task that carries a job on from ``status``."""
    from faq import tasks

    steps: dict[str, Any] = {
        Status.PARSING: tasks.upload_parse,
        Status.IMPORTING: tasks.upload_apply,
    }
    return steps[status]


def _queue_on_commit(status: str, job_id: int) -> None:
    enqueue_on_commit(_task_of(status), job_id)


def _claim(job_id: int, status: str) -> ImportJob | None:
    """Count a delivery of the job's step; None when the job is past that step (a
    second delivery), or out of attempts and now failed."""
    claimed = ImportJob.objects.filter(
        pk=job_id, status=status, attempts__lt=settings.UPLOAD_MAX_ATTEMPTS
    ).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    if claimed:
        return ImportJob.objects.select_related("collection").get(pk=job_id)
    verb = "Reading the files" if status == Status.PARSING else "Importing"
    ImportJob.objects.filter(pk=job_id, status=status).update(
        status=Status.FAILED,
        error=f"{verb} stopped the worker {settings.UPLOAD_MAX_ATTEMPTS} times; "
        "the files are kept: ask an administrator to look at the worker's log.",
    )
    return None


def upload_parse(*, job_id: int) -> None:
    """Read every file of the job and record the preview (what would change)."""
    job = _claim(job_id, Status.PARSING)
    if job is None:
        return  # gone, or another delivery of this task got there first
    rows, errors = _read(job)
    report = import_rows(rows, collection=job.collection, errors=errors, dry_run=True)
    preview = report.as_dict() | {
        "errors": report.as_dict()["errors"][:MAX_REPORTED_ERRORS],
        "error_count": len(report.errors),
        "first_rows": [_preview(row) for row in rows[:PREVIEW_ROWS]],
    }
    refused = bool(report.errors) and not job.skip_invalid
    status = Status.REFUSED if refused else Status.READY
    updated = ImportJob.objects.filter(pk=job.pk, status=Status.PARSING).update(
        status=status, report=preview, attempts=0
    )
    if refused:
        upload_purge(job_id=job.pk)
    elif updated and job.confirm:
        upload_confirm(job=job)


def upload_confirm(*, job: ImportJob) -> bool:
    """Queue the import of a job that is ready; False when it is not."""
    claimed = ImportJob.objects.filter(pk=job.pk, status=Status.READY).update(
        status=Status.IMPORTING, updated_at=timezone.now()
    )
    if claimed:
        _queue_on_commit(Status.IMPORTING, job.pk)
    return bool(claimed)


def upload_apply(*, job_id: int) -> None:
    """Import the job's rows in one transaction, then let the embedding begin.

    The job's row stays locked while it imports, so that a second delivery (the
    sweep's, after a lost message) waits, then finds the job done."""
    if _claim(job_id, Status.IMPORTING) is None:
        return
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update()
            .select_related("collection")
            .filter(pk=job_id, status=Status.IMPORTING)
            .first()
        )
        if job is None:
            return
        _import(job)
    upload_purge(job_id=job_id)


def _import(job: ImportJob) -> None:
    rows, errors = _read(job)
    chunks_after = Chunk.objects.aggregate(last=Max("pk"))["last"] or 0

    def written(count: int) -> None:
        with contextlib.suppress(*CACHE_ERRORS):  # a nicety: never fails the import
            cache.set(_written_key(job.pk), count, timeout=3600)

    report = import_rows(
        rows,
        collection=job.collection,
        errors=errors,
        skip_invalid=job.skip_invalid,
        on_written=written,
    )
    result = report.as_dict() | {
        "errors": report.as_dict()["errors"][:MAX_REPORTED_ERRORS],
        "error_count": len(report.errors),
        "first_rows": job.report.get("first_rows", []),
    }
    ImportJob.objects.filter(pk=job.pk).update(
        status=Status.DONE if report.written else Status.REFUSED,
        report=result,
        items_written=report.created + report.updated if report.written else 0,
        chunks_after=chunks_after,
        attempts=0,
    )


def upload_fail(*, job_id: int, message: str) -> None:
    ImportJob.objects.filter(pk=job_id).exclude(status=Status.DONE).update(
        status=Status.FAILED, error=message
    )


def upload_purge(*, job_id: int) -> None:
    """Drop the bytes of a job's files once nothing will read them again (imported,
    or refused: the person fixes the file and uploads it anew); names and sizes
    stay. A failed job keeps them, for a fixed parser or worker to read."""
    ImportFile.objects.filter(
        job_id=job_id, job__status__in=[Status.DONE, Status.REFUSED]
    ).update(data=b"")


def uploads_sweep() -> int:
    """Queue again each job whose step nothing has touched for
    ``UPLOAD_STALE_SECONDS`` (its message lost with a broker restart, or its
    worker gone); one out of attempts is failed with a message when its task
    claims it. A job whose import holds its row locked is running and is left be.
    Returns how many were queued."""
    now = timezone.now()
    queued = 0
    with transaction.atomic():
        stale = (
            ImportJob.objects.select_for_update(skip_locked=True)
            .filter(
                status__in=[Status.PARSING, Status.IMPORTING],
                updated_at__lt=now - timedelta(seconds=settings.UPLOAD_STALE_SECONDS),
            )
            .values_list("pk", "status")
        )
        for pk, status in list(stale):
            ImportJob.objects.filter(pk=pk).update(updated_at=now)
            _queue_on_commit(status, pk)
            queued += 1
    return queued


def _read(job: ImportJob) -> tuple[list[Row], list[RowError]]:
    rows: list[Row] = []
    errors: list[RowError] = []
    limits = Limits(max_file_bytes=settings.UPLOAD_MAX_FILE_BYTES)
    for upload in job.files.all():
        try:
            found, problems = parse_file(upload.name, bytes(upload.data), limits=limits)
        except ImportRefused as refusal:
            # Line 0: the whole file. The message already starts with its name.
            reason = str(refusal).removeprefix(f"{upload.name}: ")
            errors.append(RowError(0, reason, upload.name))
            continue
        rows.extend(found)
        errors.extend(problems)
        ImportJob.objects.filter(pk=job.pk).update(rows_parsed=len(rows) + len(errors))
    return rows, errors


def _preview(row: Row) -> dict[str, str]:
    title = row.data.get("question") or row.data.get("title") or ""
    text = row.data.get("answer") or row.data.get("body") or ""
    return {
        "where": row.where,
        "kind": row.kind,
        "title": title[:200],
        "text": text[:200],
        "category": row.data.get("category", ""),
    }


def _written_key(job_id: int) -> str:
    return f"upload:{job_id}:written"


def upload_progress(job: ImportJob) -> dict[str, Any]:
    """Where the job stands: rows read, items written, chunks embedded of total."""
    report = job.report or {}
    to_write = report.get("created", 0) + report.get("updated", 0)
    written = job.items_written
    if job.status == Status.IMPORTING:
        with contextlib.suppress(*CACHE_ERRORS):
            written = cache.get(_written_key(job.pk), 0)
    chunks = {"total": 0, "embedded": 0, "failed": 0}
    if job.status == Status.DONE:
        partition = job.collection.partition
        made = Chunk.objects.filter(partition=partition, pk__gt=job.chunks_after)
        counts = status_counts(made, by="partition").get(partition, {})
        chunks = {
            "total": sum(counts.values()),
            "embedded": counts.get(Chunk.Status.EMBEDDED, 0),
            "failed": counts.get(Chunk.Status.FAILED, 0),
        }
    finished = job.status in (Status.REFUSED, Status.FAILED) or (
        job.status == Status.DONE
        and chunks["embedded"] + chunks["failed"] >= chunks["total"]
    )
    return {
        "id": job.pk,
        "collection": job.collection.slug,
        "status": job.status,
        "files": [f.name for f in job.files.all()],
        "rows_parsed": job.rows_parsed,
        "items_to_write": to_write,
        "items_written": written,
        "chunks_total": chunks["total"],
        "chunks_embedded": chunks["embedded"],
        "chunks_failed": chunks["failed"],
        "finished": finished,
        "error": job.error,
        "report": report,
    }
