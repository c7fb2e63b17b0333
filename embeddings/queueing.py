"""Sending tasks to the broker without ever failing the write that asked for them.

A task queued after a commit that then cannot reach the broker (Redis away, a
timeout) is logged and dropped: the rows it was for are already in the database,
pending, and ``reconcile`` queues them again. The request that committed them
answers as the commit did, never 500 (a client retrying would write them twice).
"""

import logging
from functools import partial
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a publish raises when the broker cannot be reached in time: kombu wraps
# connection errors once its retry policy is spent; socket and Redis errors can
# come through as they are.
BROKER_ERRORS = (OperationalError, RedisError, ConnectionError, TimeoutError)


def enqueue(task: Any, *args: Any) -> bool:
    """``task.delay(*args)``; False, logged, when the broker cannot take it."""
    if task.app.conf.task_always_eager:
        task.delay(*args)  # runs here: its own errors are the caller's
        return True
    try:
        task.delay(*args)
    except BROKER_ERRORS as error:
        logger.warning(
            "could not queue %s%r (%s: %s); reconcile will queue it again",
            task.name,
            args if len(repr(args)) < 200 else (f"{len(args)} arguments",),
            type(error).__name__,
            error,
        )
        return False
    return True


def enqueue_on_commit(task: Any, *args: Any) -> None:
    """``enqueue`` once the current transaction commits (now, outside one). Robust:
    whatever else goes wrong in sending is logged, and the commit stands."""
    eager = task.app.conf.task_always_eager  # then the task's errors propagate
    transaction.on_commit(partial(enqueue, task, *args), robust=not eager)
