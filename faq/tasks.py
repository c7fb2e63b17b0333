"""Celery tasks for uploads: take a job id, call one service."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from faq import uploads

PARSE_SECONDS = 300
_task = dict(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=5,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=PARSE_SECONDS,
    time_limit=PARSE_SECONDS + 30,
)


@shared_task(**_task)
def upload_parse(job_id: int) -> None:
    try:
        uploads.upload_parse(job_id=job_id)
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
    except SoftTimeLimitExceeded:
        uploads.upload_fail(job_id=job_id, message="The import took over 30 minutes.")
    except (OperationalError, InterfaceError):
        raise  # retried
    except Exception:
        uploads.upload_fail(
            job_id=job_id, message="The import failed: nothing was written."
        )
        raise
