"""Progress bars for long commands: shown on a terminal, silent otherwise."""

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    stream: TextIO | None = None,
) -> Iterator[T]:
    yield from counter(total=total, desc=desc, stream=stream, iterable=items)


def counter(
    *,
    total: int | None = None,
    desc: str = "",
    stream: TextIO | None = None,
    iterable: Iterable[Any] | None = None,
) -> Any:
    """A bar to ``update(n)`` by hand (tqdm's), or over ``iterable``."""
    from tqdm import tqdm

    stream = stream or sys.stderr
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        file=stream,
        disable=not stream.isatty(),
        unit="item",
    )
