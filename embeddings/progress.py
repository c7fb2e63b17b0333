"""Progress bars for long commands: shown on a terminal, silent otherwise."""

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    stream: TextIO | None = None,
) -> Iterator[T]:
    from tqdm import tqdm

    stream = stream or sys.stderr
    yield from tqdm(
        items,
        total=total,
        desc=desc,
        file=stream,
        disable=not stream.isatty(),
        unit="item",
    )
