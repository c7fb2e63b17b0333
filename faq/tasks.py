"""Celery tasks for uploads and analysis jobs: take an id, call one service."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from embeddings.services import TRANSIENT
from faq import jobs, uploads
from faq.exceptions import ApplicationError

logger = logging.getLogger(__name__)

PARSE_SECONDS = 300
_task = dict(
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=PARSE_SECONDS,
    time_limit=PARSE_SECONDS + 30,
)


@shared_task(**_task)
def upload_parse(job_id: int) -> None:
    try:
        uploads.upload_parse(job_id=job_id)
    except TRANSIENT:
        raise  # retried; the sweep resumes it if the retries run out
    except SoftTimeLimitExceeded:
        uploads.upload_fail(
            job_id=job_id, message=f"Reading the files took over {PARSE_SECONDS} s."
        )
    except Exception:
        # The files are kept: a fixed parser can read them again.
        uploads.upload_fail(job_id=job_id, message="The files could not be read.")
        raise


@shared_task(**(_task | {"soft_time_limit": 1800, "time_limit": 1860}))
def upload_apply(job_id: int) -> None:
    try:
        uploads.upload_apply(job_id=job_id)
    except TRANSIENT:
        raise
    except SoftTimeLimitExceeded:
        uploads.upload_fail(job_id=job_id, message="The import took over 30 minutes.")
    except Exception:
        uploads.upload_fail(
            job_id=job_id, message="The import failed: nothing was written."
        )
        raise


@shared_task(**(_task | {"soft_time_limit": 600, "time_limit": 630}))
def analysis_run(job_id: int) -> None:
    try:
        jobs.job_run(job_id=job_id)
    except TRANSIENT:
        raise
    except ApplicationError as error:  # a request limit changed since it was posted
        jobs.job_fail(job_id=job_id, message=error.message)
    except SoftTimeLimitExceeded:
        jobs.job_fail(job_id=job_id, message="The job took over 10 minutes.")
    except Exception:
        jobs.job_fail(job_id=job_id, message="The job failed; it was logged.")
        raise


@shared_task(**_task)
def sweep() -> None:
    """Periodic: uploads and jobs whose message was lost go on."""
    uploads_queued = uploads.uploads_sweep()
    jobs_queued, jobs_deleted = jobs.jobs_sweep()
    logger.info(
        "sweep: %d uploads and %d jobs queued again, %d finished jobs deleted",
        uploads_queued,
        jobs_queued,
        jobs_deleted,
    )
