"""Ways to damage an index file, as a disk, a crash or a person might."""

from pathlib import Path


def flip(path: Path) -> None:
    """64 bytes in the middle of the file inverted."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    """The file cut to its first third."""
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])


def largest_keyword_file(partition_dir: Path) -> Path:
    files = [p for p in (partition_dir / "keywords").iterdir() if p.is_file()]
    return max(
        (p for p in files if not p.name.startswith(".")), key=lambda p: p.stat().st_size
    )


def manifest_of(partition_dir: Path) -> dict[str, str]:
    import json

    return json.loads((partition_dir / "manifest.json").read_text())


# Each: (partition directory) -> None.
DAMAGES = {
    "vectors flipped": lambda d: flip(d / manifest_of(d)["file"]),
    "vectors truncated": lambda d: truncate(d / manifest_of(d)["file"]),
    "vectors deleted": lambda d: (d / manifest_of(d)["file"]).unlink(),
    "manifest garbage": lambda d: (d / "manifest.json").write_text("{not json"),
    "manifest truncated": lambda d: truncate(d / "manifest.json"),
    "manifest deleted": lambda d: (d / "manifest.json").unlink(),
    "sources flipped": lambda d: flip(d / manifest_of(d)["sources"]),
    "sources truncated": lambda d: truncate(d / manifest_of(d)["sources"]),
    "keywords meta truncated": lambda d: truncate(d / "keywords" / "meta.json"),
    "keywords segment flipped": lambda d: flip(largest_keyword_file(d)),
}
