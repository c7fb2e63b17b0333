"""Each web host's own copy of the indexes, kept current from the change feed.

Workers embed chunks and store their vectors in the database; every change to
what a partition's index should hold also writes an entry to the change feed
(``Change``, in the same transaction). A web host reads the feed in id order and
applies it to the indexes in its own ``INDEX_DIR``: no shared filesystem, and no
process on the host but gunicorn. One web worker per host follows the feed (it
holds ``INDEX_DIR/.follower.lock``; the others wait to take over) and publishes
new versions as the index writer does; the host's other workers map what it
publishes (``embeddings.index.reader``).

Where this host is in the feed is ``INDEX_DIR/feed.json``: the highest entry
applied, and the ids below it not seen yet (``gaps``). Ids come from a sequence
when a transaction writes its entries, but transactions commit in their own
order: an entry with a lower id can appear after a higher one was read. So a gap
is looked for again at every poll until it appears or ``INDEX_FEED_GAP_SECONDS``
pass (a rolled-back transaction leaves a gap that never fills). Applying an
entry reads the chunk as it is now, so entries applied twice or late do no harm;
and every ``RECONCILE_INTERVAL`` the follower checks each partition in full
against the database, as reconcile does, which heals anything missed.

A host with no state (a new host, an emptied ``INDEX_DIR``), or too far behind
(``INDEX_FEED_REBUILD_ABOVE`` entries, or away for half of the
``INDEX_FEED_KEEP_SECONDS`` the feed is kept), builds every partition from the
stored vectors and starts at the feed's head.
"""

import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Max, Q
from django.utils import timezone

from embeddings.index import store
from embeddings.models import Change, Chunk
from embeddings.provenance import ModelMismatch
from embeddings.signals import replica_applied, replica_checked

logger = logging.getLogger(__name__)

STATE = "feed.json"
LOCK = ".follower.lock"
REPAIR = ".repair-"  # INDEX_DIR/.repair-<partition>: a reader found damage
MAX_GAPS = 10_000


@dataclass
class FeedState:
    position: int = 0  # the highest entry applied
    gaps: dict[int, float] = field(default_factory=dict)  # id -> when first missed
    checked: float = 0.0  # when every partition was last checked in full
    polled: float = 0.0  # when the feed was last read

    @classmethod
    def read(cls) -> "FeedState | None":
        try:
            data = json.loads((store.index_dir() / STATE).read_text())
            return cls(
                position=int(data["position"]),
                gaps={int(k): float(v) for k, v in data["gaps"].items()},
                checked=float(data["checked"]),
                polled=float(data["polled"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.error("replica: %s is unreadable (%s): rebuilding", STATE, error)
            return None

    def write(self) -> None:
        root = store.index_dir()
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{STATE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.__dict__))
        os.replace(tmp, root / STATE)


def follow_once() -> int:
    """Apply the feed beyond this host's position (at most ``INDEX_FEED_BATCH``
    entries); the entries applied. Call from the host's one follower."""
    state, now = FeedState.read(), time.time()
    if state is None or _behind(state, now):
        head = _head()  # read first: what is written meanwhile comes next time
        sync_all("no feed state" if state is None else "too far behind the feed")
        FeedState(position=head, checked=now, polled=now).write()
        return 0
    wanted = Q(pk__gt=state.position)
    if state.gaps:
        wanted |= Q(pk__in=list(state.gaps))
    entries = list(
        Change.objects.filter(wanted)
        .order_by("pk")
        .values_list("pk", "partition", "chunk_id")[: settings.INDEX_FEED_BATCH]
    )
    changed: dict[str, set[int] | None] = {}
    for _, partition, chunk_id in entries:
        if chunk_id is None:
            changed[partition] = None  # the whole partition
        elif (ids := changed.setdefault(partition, set())) is not None:
            ids.add(chunk_id)
    for partition, chunk_ids in sorted(changed.items()):
        _apply(partition, chunk_ids)
    _advance(state, [pk for pk, _, _ in entries], now)
    state.polled = now
    if now - state.checked > settings.RECONCILE_INTERVAL:
        sync_all("the periodic check")
        state.checked = now
    state.write()
    return len(entries)


def _apply(partition: str, chunk_ids: set[int] | None) -> None:
    from embeddings import services

    if not Chunk.objects.filter(partition=partition).exists():
        store.remove_partition(partition)
        replica_applied.send(sender=Change, partition=partition, chunk_ids=None)
        return
    try:
        if chunk_ids is None:
            services.index_sync(partition)
        else:
            services.index_apply(partition, chunk_ids)
    except ModelMismatch as error:  # searches refuse it too; the rest goes on
        logger.error("replica: %s", error)
        return
    replica_applied.send(sender=Change, partition=partition, chunk_ids=chunk_ids)


def _advance(state: FeedState, seen: list[int], now: float) -> None:
    """Move the position past what was read; remember ids skipped below it."""
    for pk in seen:
        state.gaps.pop(pk, None)
    if seen and max(seen) > state.position:
        missing = set(range(state.position + 1, max(seen))) - set(seen)
        state.gaps |= dict.fromkeys(missing, now)
        state.position = max(seen)
    wait = settings.INDEX_FEED_GAP_SECONDS
    gaps = sorted(pk for pk, t in state.gaps.items() if now - t < wait)
    # Looked for at every poll: the newest only, if a rolled-back bulk write left
    # many (the periodic full check finds what one of the others held).
    state.gaps = {pk: state.gaps[pk] for pk in gaps[-MAX_GAPS:]}


def _head() -> int:
    return int(Change.objects.aggregate(head=Max("pk"))["head"] or 0)


def _behind(state: FeedState, now: float) -> bool:
    """Whether the entries past the position are too many to apply one by one, or
    may have been pruned before this host read them (it was away too long)."""
    if now - state.polled > settings.INDEX_FEED_KEEP_SECONDS / 2:
        return True
    return _head() - state.position > settings.INDEX_FEED_REBUILD_ABOVE


def sync_all(reason: str) -> None:
    """Every partition in the database checked against it and its files verified,
    built from the stored vectors where it is missing or damaged (what reconcile
    does for a worker's index); local partitions the database no longer has
    removed."""
    from embeddings import services

    started = time.monotonic()
    wanted = services.orphans_remove()
    for partition in wanted:
        _checked(partition)
    replica_checked.send(sender=Change, partitions=wanted)
    logger.info(
        "replica: %d partitions in step with the database (%s) in %.1f s",
        len(wanted),
        reason,
        time.monotonic() - started,
    )


def _checked(partition: str) -> None:
    """Its files verified against the manifest and its index brought in step with
    the database; a partition of another model is left as it is (searches refuse
    it too), the others go on."""
    from embeddings import services

    try:
        services.index_sync(partition, verify=True)
    except ModelMismatch as error:
        logger.error("replica: %s", error)


def repairs_due() -> None:
    """Partitions this host's readers found damaged, checked and rebuilt now."""
    for path in sorted(store.index_dir().glob(f"{REPAIR}*")):
        path.unlink(missing_ok=True)
        partition = path.name.removeprefix(REPAIR)
        try:
            store.partition_dir(partition)
        except ValueError:  # not a partition name
            continue
        _checked(partition)


def repair_ask(partition: str) -> None:
    """A reader's request that this host's follower check the partition."""
    root = store.index_dir()
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{REPAIR}{partition}").touch()


# --- lag and pruning -----------------------------------------------------------------


def lag() -> dict[str, Any]:
    """How far this host's indexes are behind the feed: entries, and how long the
    oldest entry not applied has waited (seconds); two rows read by index."""
    state = FeedState.read()
    position = state.position if state else 0
    head = _head()
    oldest: datetime | None = (
        Change.objects.filter(pk__gt=position)
        .order_by("pk")
        .values_list("created_at", flat=True)
        .first()
    )
    waited = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return {
        "position": position,
        "head": head,
        "entries": max(0, head - position),
        "seconds": round(max(0.0, waited), 3),
        "gaps": len(state.gaps) if state else 0,
    }


def prune() -> int:
    """Delete feed entries older than ``INDEX_FEED_KEEP_SECONDS``: a host that was
    away longer rebuilds from the stored vectors."""
    since = timezone.now() - timedelta(seconds=settings.INDEX_FEED_KEEP_SECONDS)
    deleted, _ = Change.objects.filter(created_at__lt=since).delete()
    return int(deleted)


# --- the follower thread -------------------------------------------------------------

_started = threading.Event()


def follower_start() -> None:
    """In a web process (``searchsite.wsgi``), with ``INDEX_FOLLOW``: a thread that
    becomes the host's follower when no other process of the host is one."""
    if not settings.INDEX_FOLLOW or _started.is_set():
        return
    _started.set()
    threading.Thread(target=_follow_forever, name="index-follower", daemon=True).start()


def _follow_forever() -> None:
    root = store.index_dir()
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / LOCK, "w")  # noqa: SIM115  (held for the process's life)
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(settings.INDEX_FOLLOW_SECONDS * 5)  # another worker follows
    logger.info("replica: process %d follows the change feed", os.getpid())
    failing = False
    while True:
        try:
            close_old_connections()
            repairs_due()
            while follow_once() >= settings.INDEX_FEED_BATCH:
                pass  # more waiting: on at once
            if failing:
                logger.warning("replica: following the change feed again")
            failing = False
        except Exception as error:  # the database away: serve what is here
            if not failing:
                logger.error("replica: cannot follow the change feed: %s", error)
            failing = True
        finally:
            close_old_connections()
        time.sleep(settings.INDEX_FOLLOW_SECONDS)
