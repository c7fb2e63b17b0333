"""ONNX encoders: the sentence-transformers model exported once and run without
torch, by ONNX Runtime in fp32 (``onnx``) or with int8 weights (``onnx-int8``), or by
OpenVINO (``openvino``: bf16 products where the CPU has them).

The export (torch to ONNX, ONNX Runtime's BERT fusions, dynamic quantisation) runs on
first use or ahead of it (``manage.py prepare_encoder``) and is cached under
``MODELS_DIR/<model>-<hash>/`` (``VAR_DIR/models`` by default); the hash covers the
weights and the recipe, so a new model or recipe builds a new directory and a built
one is never changed.
Texts are tokenised once. ONNX Runtime runs each alone, unpadded, several side by
side; OpenVINO packs them, sorted by length, into batches of about
``EMBEDDINGS_TOKEN_BUDGET`` padded tokens, so short texts are not padded to long
ones and a batch of long ones does not blow the cache.
"""

import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from embeddings.encoders import LocalEncoder, _read_dimension, encoder_threads

# Bump when the export changes what it writes: every cache is then rebuilt.
RECIPE = "2"
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Measured on STS-B (see bench/RESULTS.md): per-tensor int8 weights lose up to
# 0.19 cosine on some sentences (mean 0.957 against torch); a scale per output
# channel brings the mean to 0.990, and 7-bit weights (reduce_range) keep
# AVX2's int16 accumulation (no VNNI here) from saturating: 0.8187 Spearman.
QUANTISE_OPTIONS: dict[str, Any] = {"per_channel": True, "reduce_range": True}
# ONNX Runtime's SkipLayerNormalization kernel takes 5 ns an element where Add and
# LayerNormalization together take 0.9 (onnxruntime 1.32, AVX2 and AVX-512 alike):
# neither the export nor the session fuses them (bench/RESULTS.md, "Encoder backends").
UNFUSED = ["SkipLayerNormFusion"]

logger = logging.getLogger(__name__)


class OnnxEncoder(LocalEncoder):
    """The model as an fp32 ONNX graph: the same vectors as torch (to ~1e-6).

    Each text runs alone, unpadded, so its vector never depends on the texts it was
    encoded with (int8's activation scales are its own); many texts run
    ``encoder_threads()`` at a time, one a thread, and a lone text (a query) on
    every thread. On two cores that is as fast as padded batches split over both
    threads, or faster (bench/RESULTS.md, "Encoder backends").
    """

    file = FP32_FILE

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.dimension = _read_dimension(self.path) or _hidden_size(self.path)
        self.pooling = _read_pooling(self.path)
        self._runners: dict[bool, Any] = {}
        self._runners_pid = 0
        self._lock = threading.Lock()

    def runner(self, *, side_by_side: bool) -> Any:
        """The graph loaded to run on every thread, or (``side_by_side``) on one
        thread of several; each way made on first use, so a web process holds only
        the first, and made again in a forked child (a parent's thread pool is not
        the child's)."""
        with self._lock:
            if self._runners_pid != os.getpid():
                self._runners, self._runners_pid = {}, os.getpid()
            if side_by_side not in self._runners:
                path = export_ensure(self.path, name=self.name) / self.file
                self._runners[side_by_side] = self._load(path, side_by_side)
            return self._runners[side_by_side]

    def _load(self, path: Path, side_by_side: bool) -> Any:
        return session_open(path, threads=1 if side_by_side else encoder_threads())

    def prepare(self) -> str:
        directory = export_ensure(self.path, name=self.name)
        return f"ONNX files ready in {directory}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._truncating_tokenizer().encode_batch(list(texts))
        return self._encode_rows([encoding.ids for encoding in encodings])

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        first, last = self._special_ids()
        limit = self.content_tokens
        return self._encode_rows([[*first, *list(row)[:limit], *last] for row in ids])

    @functools.cache  # noqa: B019 (one per encoder, which lives as long as the process)
    def _truncating_tokenizer(self) -> Any:
        """A second tokenizer that adds [CLS]/[SEP] and truncates as the model
        reads (the shared one must not: chunking measures whole texts)."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(self.path) / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_tokens)
        tokenizer.no_padding()
        return tokenizer

    @functools.cache  # noqa: B019
    def _special_ids(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text ([CLS], [SEP])."""
        content = self.tokenizer.encode("a", add_special_tokens=False).ids
        full = self.tokenizer.encode("a", add_special_tokens=True).ids
        start = next(
            i for i in range(len(full)) if full[i : i + len(content)] == content
        )
        return full[:start], full[start + len(content) :]

    def _encode_rows(self, rows: list[list[int]]) -> np.ndarray:
        vectors = np.zeros((len(rows), self.dimension), dtype=np.float32)
        threads = encoder_threads()
        side_by_side = len(rows) > 1 and threads > 1
        session = self.runner(side_by_side=side_by_side) if rows else None
        # Longest first, so that the threads run out of work together.
        todo = iter(sorted(range(len(rows)), key=lambda i: -len(rows[i])))

        def work() -> None:
            for i in todo:  # a list's iterator, shared: each index goes to one thread
                vectors[i] = self._encode_batch(session, [rows[i]])[0]

        if not side_by_side:
            work()
            return vectors
        with ThreadPoolExecutor(threads) as threads_pool:
            for running in [threads_pool.submit(work) for _ in range(threads)]:
                running.result()
        return vectors

    def _encode_batch(self, session: Any, rows: list[list[int]]) -> np.ndarray:
        feed = padded(rows, [arg.name for arg in session.get_inputs()])
        hidden = session.run(None, feed)[0]
        return pool(hidden, feed["attention_mask"], mode=self.pooling)


class OnnxInt8Encoder(OnnxEncoder):
    """The fp32 graph with int8 weights (dynamic quantisation): faster on a CPU,
    vectors within about 0.99 cosine of torch's."""

    file = INT8_FILE


class OpenVinoEncoder(OnnxEncoder):
    """The fp32 graph run by OpenVINO, which multiplies in bf16 where the CPU does
    so natively (AMX, AVX512-BF16; STS-B 0.8186) and in fp32 elsewhere.

    Texts run in batches of about ``EMBEDDINGS_TOKEN_BUDGET`` padded tokens: one
    batch (a query) on every thread; several side by side, one a thread (OpenVINO's
    streams), which on two cores is 1.3-1.6x faster than splitting each batch.
    """

    file = FP32_FILE

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self._local = threading.local()

    def _load(self, path: Path, side_by_side: bool) -> Any:
        return openvino_compile(path, side_by_side=side_by_side)

    def _encode_rows(self, rows: list[list[int]]) -> np.ndarray:
        vectors = np.zeros((len(rows), self.dimension), dtype=np.float32)
        lengths = [len(row) for row in rows]
        batches = list(token_batches(lengths, budget=settings.EMBEDDINGS_TOKEN_BUDGET))
        if len(batches) > 1 and encoder_threads() > 1:
            self._encode_side_by_side(rows, batches, vectors)
        elif batches:
            compiled = self.runner(side_by_side=False)
            for batch in batches:
                vectors[batch] = self._encode_batch(compiled, [rows[i] for i in batch])
        return vectors

    def _encode_batch(self, session: Any, rows: list[list[int]]) -> np.ndarray:
        # One request a thread: a request runs one inference at a time.
        if getattr(self._local, "compiled", None) is not session:
            self._local.compiled = session
            self._local.request = session.create_infer_request()
        feed = padded(rows, [port.any_name for port in session.inputs])
        hidden = self._local.request.infer(feed)[0]
        return pool(hidden, feed["attention_mask"], mode=self.pooling)

    def _encode_side_by_side(
        self, rows: list[list[int]], batches: list[list[int]], vectors: np.ndarray
    ) -> None:
        from openvino import AsyncInferQueue

        compiled = self.runner(side_by_side=True)
        names = [port.any_name for port in compiled.inputs]
        queue = AsyncInferQueue(compiled, encoder_threads())

        def done(request: Any, job: tuple[list[int], np.ndarray]) -> None:
            batch, mask = job
            hidden = request.get_output_tensor(0).data
            vectors[batch] = pool(hidden, mask, mode=self.pooling)

        queue.set_callback(done)
        for batch in batches:
            feed = padded([rows[i] for i in batch], names)
            queue.start_async(feed, (batch, feed["attention_mask"]))
        queue.wait_all()


def token_batches(lengths: Sequence[int], *, budget: int) -> Iterator[list[int]]:
    """Indexes of rows grouped shortest first, each group's rows × longest row at
    most ``budget`` (a row longer than the budget goes alone)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batch: list[int] = []
    for index in order:
        if batch and (len(batch) + 1) * lengths[index] > budget:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def padded(rows: list[list[int]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The model's inputs for ``rows`` of token ids, padded to the longest."""
    width = max(len(row) for row in rows)
    input_ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    feed = {"input_ids": input_ids, "attention_mask": mask}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros_like(input_ids)
    return feed


def pool(hidden: np.ndarray, mask: np.ndarray, *, mode: str) -> np.ndarray:
    """Sentence vectors from token vectors as sentence-transformers pools them,
    L2-normalised."""
    if mode == "cls":
        vectors = hidden[:, 0]
    else:
        weights = mask[..., None].astype(np.float32)
        vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def session_open(path: Path, *, threads: int) -> Any:
    """An ONNX Runtime session: ``threads`` for the matrix products, one for the
    graph (a BERT graph is a chain)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(
        str(path),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=UNFUSED,
    )


def openvino_compile(path: Path, *, side_by_side: bool) -> Any:
    """The graph compiled by OpenVINO for ``encoder_threads()`` threads: one stream
    using them all, or (``side_by_side``) one stream a thread. Precision is left to
    OpenVINO: bf16 where the CPU computes it natively, else fp32."""
    import openvino

    threads = encoder_threads()
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": threads if side_by_side else 1,
        "PERFORMANCE_HINT": "THROUGHPUT" if side_by_side else "LATENCY",
    }
    core = openvino.Core()
    return core.compile_model(core.read_model(str(path)), "CPU", config)


# --- export -------------------------------------------------------------------


def export_dir(path: str, *, name: str) -> Path:
    """Where the export of the model at ``path`` is cached."""
    import onnxruntime

    recipe = json.dumps([RECIPE, onnxruntime.__version__, QUANTISE_OPTIONS])
    digest = hashlib.sha256(recipe.encode())
    for filename in ("config.json", *WEIGHT_FILES):
        file = Path(path) / filename
        if file.exists():
            with file.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    stem = Path(name).name or "model"
    return Path(settings.MODELS_DIR) / f"{stem}-{digest.hexdigest()[:12]}"


def export_ensure(path: str, *, name: str) -> Path:
    """The directory of the model's ONNX files, built now if it is not yet.

    One process builds (file lock) while the others wait; the build is written
    to a temporary directory and renamed into place, so a crash leaves nothing
    half-written that a later start would trust.
    """
    target = export_dir(path, name=name)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if target.exists():
            return target
        building = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            onnx_build(path, building)
            _fsync_files(building)
            os.replace(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return target


def onnx_build(path: str, directory: Path) -> None:
    """Export the transformer to ONNX, fuse it, and quantise a copy to int8."""
    config = json.loads((Path(path) / "config.json").read_text())
    raw = directory / "export.onnx"
    logger.warning("exporting %s to ONNX (once, a minute or two)", path)
    # The optimizer and quantiser log every node they touch.
    logging.disable(logging.WARNING)
    try:
        onnx_export(path, raw)
        onnx_optimize(raw, directory / FP32_FILE, config=config)
        raw.unlink()
        onnx_quantize(directory / FP32_FILE, directory / INT8_FILE)
    finally:
        logging.disable(logging.NOTSET)
    (directory / "recipe.json").write_text(json.dumps(_recipe(path)))


def onnx_export(path: str, output: Path) -> None:
    """The transformer's last hidden state, batch and sequence axes dynamic.

    Eager attention (not SDPA) traces to plain MatMul/Softmax, which ONNX
    Runtime's optimizer fuses into one Attention node. The TorchScript exporter
    (``dynamo=False``) needs no onnxscript and handles BERT fully.
    """
    import warnings

    import torch
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = (
        torch.ones((2, 8), dtype=torch.long),
        torch.tensor([[1] * 8, [1] * 5 + [0] * 3]),
        torch.zeros((2, 8), dtype=torch.long),
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _hidden_state_module(model),
            example,
            str(output),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def onnx_optimize(source: Path, output: Path, *, config: dict[str, Any]) -> None:
    """Fuse attention, LayerNorm and GELU (ONNX Runtime's transformer optimizer),
    but not a residual's Add into its LayerNorm (``UNFUSED``)."""
    if config.get("model_type") != "bert":
        shutil.copyfile(source, output)
        return
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    optimized = optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        optimization_options=options,
    )
    optimized.save_model_to_file(str(output))


def onnx_quantize(source: Path, output: Path) -> None:
    """Int8 weights, activations quantised per batch at run time.

    Every MatMul and the fused Attention's projections are quantised
    (``QUANTISE_OPTIONS``); the embeddings stay fp32 (a lookup, nothing to save).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(output),
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        **QUANTISE_OPTIONS,
    )


def _recipe(path: str) -> dict[str, Any]:
    import onnxruntime
    import torch

    return {
        "recipe": RECIPE,
        "model": path,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "quantise": QUANTISE_OPTIONS,
    }


def _hidden_state_module(model: Any) -> Any:
    """The model as positional tensors in, the last hidden state out."""
    import torch

    class HiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type: Any) -> Any:
            return self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type,
            ).last_hidden_state

    return HiddenState()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_files(directory: Path) -> None:
    for file in directory.iterdir():
        with file.open("rb") as handle:
            os.fsync(handle.fileno())


def _read_pooling(path: str) -> str:
    config_file = Path(path) / "1_Pooling" / "config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise ImproperlyConfigured(
        f"{path}: the ONNX backends pool by mean or [CLS] only; use the torch backend"
    )


def _hidden_size(path: str) -> int:
    return int(json.loads((Path(path) / "config.json").read_text())["hidden_size"])
