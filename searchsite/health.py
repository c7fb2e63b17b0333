"""Is every part this site depends on answering?"""

from typing import Any

from django.db import connection

from embeddings.encoders import EncoderUnavailable
from embeddings.selectors import index_status


def health_report() -> dict[str, Any]:
    try:
        index = index_status()
    except EncoderUnavailable as error:  # a remote provider away, its size unknown
        index = {"model": f"error: {error}", "dimension": 0, "chunks": {}}
    report = {
        "database": _check_database(),
        "broker": _check_broker(),
        "model": index.pop("model"),
        "dimension": index.pop("dimension"),
        "chunks": index.pop("chunks"),
        "index": index,
    }
    healthy = report["database"] == report["broker"] == "ok" and report["dimension"]
    return {"status": "ok" if healthy else "degraded", **report}


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # any failure is the report, not a 500
        return f"error: {error}"


def _check_broker() -> str:
    from searchsite.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as error:
        return f"error: {error}"
