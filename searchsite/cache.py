"""The cache without Redis: diskcache's SQLite files, shared by every process of the
machine, an atomic increment in tens of microseconds (Django's file-based cache
writes and renames a file per rate-limit count, and lists its folder to cull)."""

from typing import Any

from diskcache import DjangoCache


class DiskCache(DjangoCache):  # type: ignore[misc]
    """diskcache's Django backend, its connections kept from one request to the
    next: Django closes every cache when a request ends, which here would mean
    opening the SQLite files again on the next one (about a millisecond). Each
    thread has its own connections, and a forked process opens its own."""

    def close(self, **kwargs: Any) -> None:
        pass
