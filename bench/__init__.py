"""Reproducible benchmarks; each writes a table and records it in RESULTS.md."""

import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Set in a process that runs with AVX-512, VNNI, BF16 and AMX hidden (avx2_only_exec).
AVX2_ONLY = "BENCH_AVX2_ONLY"


def cpu_name() -> str:
    """The CPU every figure is labelled with: /proc/cpuinfo's model name, and what
    was hidden from it."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if os.environ.get(AVX2_ONLY):
        name += " as AVX2 only (AVX-512, VNNI, BF16, AMX hidden from CPUID)"
    return name


def avx2_only_exec() -> None:
    """Run this command again on the kernels an AVX2-only CPU (AMD Zen 3) runs:
    with ``bench/avx2only.c`` preloaded, built here with gcc once."""
    source = Path(__file__).with_name("avx2only.c")
    library = ROOT / "var" / "bench" / "avx2only.so"
    if not library.exists() or library.stat().st_mtime < source.stat().st_mtime:
        library.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["gcc", "-O2", "-shared", "-fPIC", "-o", library, source, "-ldl"],
            check=True,
        )
    env = {**os.environ, "LD_PRELOAD": str(library), AVX2_ONLY: "1"}
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def avx2_only_check() -> None:
    """Exit unless this process's CPUID really shows AVX2 without AVX-512 (CPUID
    faulting is a kernel feature a host may lack)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # NumPy 1
        from numpy.core._multiarray_umath import __cpu_features__ as features

    if features.get("AVX512F") or not features.get("AVX2"):
        sys.exit(
            "--avx2-only: this machine cannot hide AVX-512 from CPUID (no CPUID "
            "faulting: the cpuid_fault flag in /proc/cpuinfo), or has no AVX2"
        )
