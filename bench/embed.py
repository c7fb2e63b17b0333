"""Encoder throughput and quality: every local backend on the same real texts.

    python -m bench.embed [--json] [--texts 1000] [--rounds 5] [--backends ...]

Texts: the first N SciFact abstracts (title + text, long) and the first N StackFAQ
questions (short; there are 625), the mix a help site embeds. Each backend encodes
them all after a warm-up; the texts are split into rounds and the backends take
turns within each round (in a rotating order), so a neighbour's load on the shared
cores falls on all of them alike and the ratios hold. Tokens are real word pieces
([CLS]/[SEP] included, padding not), as the model reads them (truncated to 256).

Quality: STS-benchmark test cosine Spearman of each backend (the gate is 0.815).
``--avx2-only``: every library runs the kernels an AVX2-only CPU (AMD Zen 3) runs,
on this one (``bench/avx2only.c``), so that CPU's ratios can be measured anywhere.
Floor: FLOP per token (the six layers' matrix products, 144 d^2, plus attention,
24 L d at the texts' own length L) times the tokens, over the stated per-core peak
of this machine's matrix multiply (fp32 and int8; openvino counts as fp32, its graph).
"""

import argparse
import csv
import json
import os
import platform
import time
from typing import TYPE_CHECKING

from bench import AVX2_ONLY, ROOT, avx2_only_check, avx2_only_exec, cpu_name

if TYPE_CHECKING:
    from embeddings.encoders import Encoder

DATA = ROOT.parent / "shared" / "data"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")
GATE = 0.815
# Measured on this machine's cores at matrix-multiply peak (MiniLM-sized GEMMs),
# in MiniLM tokens per second per core; times 21.2 MFLOP a token:
# about 95 GFLOP/s fp32 and 286 GOP/s int8 per core.
PEAK_TOKENS_PER_CORE = {"fp32": 4500, "int8": 13500}


def bench_texts(count: int) -> list[str]:
    """A fixed selection: the first ``count`` of each dataset, in file order."""
    texts = []
    with (DATA / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line, _ in zip(handle, range(count), strict=False):
            doc = json.loads(line)
            texts.append(f"{doc['title']} {doc['text']}".strip())
    with (DATA / "stackfaq" / "queries.jsonl").open(encoding="utf-8") as handle:
        texts += [
            json.loads(line)["text"]
            for line, _ in zip(handle, range(count), strict=False)
        ]
    return texts


def sts_spearman(encoder: object) -> float:
    from scipy.stats import spearmanr

    with (DATA / "stsb" / "sts-test.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    first = encoder.encode([r["sentence1"] for r in rows])  # type: ignore[attr-defined]
    second = encoder.encode([r["sentence2"] for r in rows])  # type: ignore[attr-defined]
    scores = (first * second).sum(axis=1)
    return float(spearmanr(scores, [float(r["score"]) for r in rows]).statistic)


def flop_per_token(
    lengths: list[int], *, dimension: int = 384, layers: int = 6
) -> float:
    """Mean FLOP a token costs: 12 d^2 multiply-adds of weights per layer (Q, K, V,
    output, and the 4d feed-forward both ways), plus 2 L d multiply-adds of attention
    per layer (scores and weighted sum, L the text's length without padding)."""
    tokens = sum(lengths)
    attention = sum(2 * 2 * n * n * dimension for n in lengths) * layers
    return 2 * 12 * dimension**2 * layers + attention / tokens


def timed_rounds(
    encoders: dict[str, "Encoder"], texts: list[str], rounds: int
) -> dict[str, float]:
    seconds = dict.fromkeys(encoders, 0.0)
    names = list(encoders)
    for index in range(rounds):
        part = texts[index::rounds]
        for name in names[index % len(names) :] + names[: index % len(names)]:
            started = time.perf_counter()
            encoders[name].encode(part)
            seconds[name] += time.perf_counter() - started
    return seconds


def run(backends: list[str], count: int, rounds: int) -> dict[str, object]:
    from embeddings.encoders import encoder_threads, make_encoder

    texts = bench_texts(count)
    encoders = {name: make_encoder(name) for name in backends}
    for encoder in encoders.values():
        encoder.prepare()
        encoder.encode(texts[:: max(1, len(texts) // 64)])  # warm-up: load, allocate
    reference = next(iter(encoders.values()))
    lengths = [
        min(len(ids) + 2, reference.max_tokens) for ids in reference.token_ids(texts)
    ]
    tokens = sum(lengths)
    seconds = timed_rounds(encoders, texts, rounds)
    threads = encoder_threads()
    per_token = flop_per_token(lengths)
    rows = {}
    for name in backends:
        kind = "int8" if "int8" in name else "fp32"
        peak = PEAK_TOKENS_PER_CORE[kind] * threads * 21.2e6  # FLOP per second
        floor = per_token * tokens / peak
        rows[name] = {
            "seconds": round(seconds[name], 2),
            "tokens_per_s": round(tokens / seconds[name]),
            "texts_per_s": round(len(texts) / seconds[name], 1),
            "sts_spearman": round(sts_spearman(encoders[name]), 4),
            "floor_seconds": round(floor, 2),
            "over_floor": round(seconds[name] / floor, 2),
        }
    return {
        "texts": len(texts),
        "tokens": tokens,
        "threads": threads,
        "mflop_per_token": round(per_token / 1e6, 1),
        "backends": rows,
    }


def summary(result: dict[str, object]) -> dict[str, object]:
    rows: dict[str, dict[str, float]] = result["backends"]  # type: ignore[assignment]
    passing = [name for name, row in rows.items() if row["sts_spearman"] >= GATE]
    best = max(passing, key=lambda name: rows[name]["tokens_per_s"])
    torch_rate = rows["torch"]["tokens_per_s"] if "torch" in rows else float("nan")
    return {
        "torch_tokens_per_s": torch_rate,
        "best_backend": best,
        "best_tokens_per_s": rows[best]["tokens_per_s"],
        "speedup": round(rows[best]["tokens_per_s"] / torch_rate, 2),
        "sts_spearman": rows[best]["sts_spearman"],
    }


def machine() -> str:
    import onnxruntime
    import openvino
    import torch

    return (
        f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()} "
        f"kernels), onnxruntime {onnxruntime.__version__}, "
        f"openvino {openvino.get_version().split('-')[0]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--texts", type=int, default=1000, help="of each dataset")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument(
        "--avx2-only",
        action="store_true",
        help="run on the kernels of an AVX2-only CPU (Zen 3): AVX-512, VNNI, BF16 "
        "and AMX hidden from CPUID",
    )
    args = parser.parse_args()
    if args.avx2_only and not os.environ.get(AVX2_ONLY):
        avx2_only_exec()
    if args.avx2_only:
        avx2_only_check()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
    import django

    django.setup()
    result = run(args.backends, args.texts, args.rounds)
    result.update(summary(result))
    result["machine"] = machine()
    print(f"machine: {result['machine']}; intra-op threads {result['threads']}")
    print(
        f"{result['texts']} texts, {result['tokens']} tokens, "
        f"{result['mflop_per_token']} MFLOP a token"
    )
    header = "backend     tokens/s  texts/s  seconds  floor s  x floor  STS-B"
    print(header)
    for name, row in result["backends"].items():  # type: ignore[attr-defined]
        print(
            f"{name:<11} {row['tokens_per_s']:>8} {row['texts_per_s']:>8} "
            f"{row['seconds']:>8} {row['floor_seconds']:>8} {row['over_floor']:>8} "
            f"{row['sts_spearman']:>6}"
        )
    print(
        f"best passing STS-B >= {GATE}: {result['best_backend']}, "
        f"{result['speedup']}x torch"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
