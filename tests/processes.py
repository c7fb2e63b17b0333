"""Child processes the tests start (Celery workers, gunicorn instances)."""

import subprocess


def process_stop(process: subprocess.Popen[bytes]) -> None:
    """Ask it to stop (SIGTERM: a warm shutdown), and kill it after a minute."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
