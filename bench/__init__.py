"""Reproducible benchmarks; each writes a table and records it in RESULTS.md."""

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU every figure is labelled with: /proc/cpuinfo's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
