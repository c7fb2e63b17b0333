"""One contract for every local encoder backend (torch, onnx, onnx-int8, openvino),
on the real model; then what only the ONNX backends do (batching, the export cache)."""

import csv
import json
import threading
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from embeddings import onnx
from embeddings.encoders import (
    Encoder,
    backend_default_set,
    encoder_threads,
    make_encoder,
    threads_default_set,
)
from searchsite.celery import _worker_child_init
from searchsite.settings import bulk_backend
from tests.conftest import DATA
from tests.encoding import batch_tolerance

LOCAL = ["torch", "onnx", "onnx-int8", "openvino"]
_encoders: dict[str, Encoder] = {}


def encoder_of(backend: str) -> Encoder:
    """One encoder per backend for the whole module: loading is the slow part."""
    if backend not in _encoders:
        _encoders[backend] = make_encoder(backend)
    return _encoders[backend]


@pytest.fixture(params=LOCAL)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def encoder(backend: str) -> Encoder:
    return encoder_of(backend)


def real_texts() -> list[str]:
    """Long SciFact abstracts and short StackFAQ questions, taking turns."""
    with (DATA / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for line in islice(handle, 12)]
    with (DATA / "stackfaq" / "queries.jsonl").open(encoding="utf-8") as handle:
        questions = [json.loads(line)["text"] for line in islice(handle, 12)]
    longs = [f"{doc['title']} {doc['text']}" for doc in docs]
    return [text for pair in zip(longs, questions, strict=True) for text in pair]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_vectors_are_unit_float32_rows_of_the_model_dimension(encoder):
    vectors = encoder.encode(["hello", "a much longer sentence about refunds", "x"])
    assert (vectors.dtype, vectors.shape) == (np.float32, (3, 384))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_no_rows(encoder):
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.encode_ids([]).shape == (0, 384)
    assert encoder.encode([]).dtype == np.float32


def test_vectors_come_back_in_input_order_after_length_sorting(backend, encoder):
    texts = real_texts()  # long and short interleaved, so sorting moves them
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    similarity = together @ alone.T
    assert similarity.argmax(axis=1).tolist() == list(range(len(texts)))
    # ONNX Runtime runs each text alone (int8's scales are its own); bf16 batches.
    assert cosines(together, alone).min() > 1 - batch_tolerance(backend)


def test_openvino_gives_the_same_vectors_side_by_side_as_one_batch_at_a_time(
    settings,
):
    """Many batches run one a thread, in a second compiled graph; one batch runs on
    every thread. Both must give each text the vector it gets alone."""
    settings.EMBEDDINGS_TOKEN_BUDGET = 300  # a batch or two of long texts each
    encoder = encoder_of("openvino")
    texts = real_texts()
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert cosines(together, alone).min() > 1 - batch_tolerance("openvino")
    assert set(encoder._runners) == {True, False}  # type: ignore[attr-defined]


def test_encode_ids_gives_what_encode_gives_for_the_same_text(encoder):
    texts = real_texts()
    by_ids = encoder.encode_ids(encoder.token_ids(texts))
    assert np.allclose(by_ids, encoder.encode(texts), atol=1e-5)


def test_long_input_is_truncated_to_what_the_model_reads(encoder):
    text = " ".join(f"word{i}" for i in range(2000))
    ids = encoder.token_ids([text])[0]
    assert len(ids) > 2000 and encoder.max_tokens == 256
    read = encoder.encode_ids([ids[: encoder.content_tokens]])
    assert np.allclose(encoder.encode([text]), read, atol=1e-5)
    assert np.allclose(encoder.encode_ids([ids]), read, atol=1e-5)


def test_token_ids_are_whole_and_without_special_tokens(encoder):
    once = encoder.token_ids(["refunds"])[0]
    assert encoder.token_ids(["refunds " * 300]) == [once * 300]


@pytest.mark.slow
def test_onnx_fp32_gives_the_torch_vectors():
    texts = real_texts()
    torch_vectors = encoder_of("torch").encode(texts)
    assert cosines(encoder_of("onnx").encode(texts), torch_vectors).min() > 1 - 1e-5


@pytest.mark.slow
def test_onnx_int8_stays_close_to_torch_on_every_text():
    texts = real_texts()
    torch_vectors = encoder_of("torch").encode(texts)
    close = cosines(encoder_of("onnx-int8").encode(texts), torch_vectors)
    # Measured: 0.9886 at worst, 0.992 on average, on these texts.
    assert close.min() > 0.98 and close.mean() > 0.99


@pytest.mark.slow
def test_openvino_stays_close_to_torch_on_every_text():
    texts = real_texts()
    torch_vectors = encoder_of("torch").encode(texts)
    close = cosines(encoder_of("openvino").encode(texts), torch_vectors)
    # bf16 products where the CPU has them; exact fp32 elsewhere.
    assert close.min() > 0.999  # measured: 0.99995 at worst, with bf16


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "least"),
    [("torch", 0.817), ("onnx", 0.817), ("onnx-int8", 0.815), ("openvino", 0.815)],
)
def test_sts_benchmark_passes_the_quality_gate(backend, least):
    """STS-B test cosine Spearman: torch 0.8185 here, 0.8203 published; the gate
    any faster backend must pass is 0.815."""
    with (DATA / "stsb" / "sts-test.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    encoder = encoder_of(backend)
    first = encoder.encode([r["sentence1"] for r in rows])
    second = encoder.encode([r["sentence2"] for r in rows])
    gold = [float(r["score"]) for r in rows]
    assert spearmanr(cosines(first, second), gold).statistic >= least


def test_token_batches_sort_by_length_and_keep_within_the_budget():
    lengths = [5, 300, 2, 40, 40, 7, 9, 120]
    batches = list(onnx.token_batches(lengths, budget=100))
    assert batches == [[2, 0, 5, 6], [3, 4], [7], [1]]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))


def test_token_batches_of_nothing_are_none():
    assert list(onnx.token_batches([], budget=100)) == []


def test_pooling_means_over_the_mask_then_normalises():
    hidden = np.array([[[3.0, 0.0], [0.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    assert np.allclose(onnx.pool(hidden, mask, mode="mean"), [[0.6, 0.8]])
    assert np.allclose(onnx.pool(hidden, mask, mode="cls"), [[1.0, 0.0]])


def test_threads_follow_the_setting(settings):
    settings.EMBEDDINGS_THREADS = 1
    assert encoder_threads() == 1
    settings.EMBEDDINGS_THREADS = 0
    assert encoder_threads() >= 1


def test_the_export_is_built_once_by_one_process_and_reused(
    settings, tmp_path, monkeypatch
):
    settings.MODELS_DIR = tmp_path
    builds = []

    def build(path: str, directory: Path) -> None:
        builds.append(path)
        (directory / onnx.FP32_FILE).write_text("graph")

    monkeypatch.setattr(onnx, "onnx_build", build)
    path = str(encoder_of("torch").path)
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(onnx.export_ensure(path, name="m"))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = onnx.export_dir(path, name="m")
    assert builds == [path] and results == [target] * 4
    assert target.parent == tmp_path and target.name.startswith("m-")
    assert [p.name for p in target.parent.iterdir() if not p.name.startswith(".")] == [
        target.name
    ]
    assert (target / onnx.FP32_FILE).read_text() == "graph"


def test_a_failed_export_leaves_nothing_behind(settings, tmp_path, monkeypatch):
    settings.MODELS_DIR = tmp_path

    def build(path: str, directory: Path) -> None:
        (directory / onnx.FP32_FILE).write_text("half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx, "onnx_build", build)
    path = str(encoder_of("torch").path)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        onnx.export_ensure(path, name="m")
    assert [p.name for p in tmp_path.iterdir()] == [
        f".{onnx.export_dir(path, name='m').name}.lock"
    ]


def test_workers_embed_with_openvino_only_where_amx_makes_it_faster():
    amx = "flags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
    assert bulk_backend("onnx-int8", amx) == "openvino"
    zen = "flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16\n"
    assert bulk_backend("onnx-int8", zen) == "onnx-int8"
    vnni = "flags\t\t: fpu sse avx2 fma avx512f avx512_vnni\n"
    assert bulk_backend("onnx-int8", vnni) == "onnx-int8"
    assert bulk_backend("onnx-int8", "") == "onnx-int8"  # no /proc/cpuinfo
    assert bulk_backend("onnx", amx) == "onnx"  # a backend chosen is kept
    assert bulk_backend("openai", amx) == "openai"


def test_a_worker_child_embeds_with_the_worker_backend(settings):
    settings.EMBEDDINGS_WORKER_BACKEND = "onnx"
    try:
        _worker_child_init()
        assert type(make_encoder()) is onnx.OnnxEncoder
    finally:
        backend_default_set("")
        threads_default_set(0)
    assert type(make_encoder()) is type(make_encoder(settings.EMBEDDINGS_BACKEND))
