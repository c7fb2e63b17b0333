"""A time limit on reading one file, so that a hostile file cannot hold a worker."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from faq.importers.rows import ImportRefused


class _TimeUp(BaseException):
    """Raised by the alarm. A BaseException, so that a library's ``except
    Exception`` around its own work cannot swallow it."""


@contextmanager
def deadline(name: str, seconds: float) -> Iterator[None]:
    """Refuse the file when reading it takes longer than ``seconds``.

    Uses SIGALRM, which only the main thread may set: elsewhere (a web server's
    worker thread) and wherever another timer is already running, this does
    nothing. Code running inside one C call is only stopped when it returns.
    """
    if not _alarm_available(seconds):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimeUp:
        raise ImportRefused(f"{name}: took longer than {seconds:g} s to read") from None
    finally:
        signal.signal(signal.SIGALRM, previous or signal.SIG_DFL)


def _alarm_available(seconds: float) -> bool:
    return (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _TimeUp
