"""Is every part this site depends on answering?"""

from typing import Any

from django.db import connection

from embeddings.selectors import index_status


def health_report() -> dict[str, Any]:
    index = index_status()
    report = {
        "database": _check_database(),
        "broker": _check_broker(),
        "model": index.pop("model"),
        "dimension": index.pop("dimension"),
        "chunks": index.pop("chunks"),
        "index": index,
    }
    healthy = report["database"] == "ok" and report["broker"] == "ok"
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
