import csv
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import spearmanr

from embeddings.encoders import get_encoder, make_encoder
from tests.conftest import DATA


@pytest.mark.slow
def test_the_packaged_model_is_the_real_all_minilm_l6_v2():
    """STS-benchmark test, cosine Spearman: 0.8203 published (MTEB). The torch
    reference; every backend's gate is in test_encoders.py."""
    with (DATA / "stsb" / "sts-test.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    encoder = make_encoder("torch")
    first = encoder.encode([r["sentence1"] for r in rows])
    second = encoder.encode([r["sentence2"] for r in rows])
    spearman = spearmanr(
        (first * second).sum(axis=1), [float(r["score"]) for r in rows]
    )
    assert len(rows) == 1379
    assert spearman.statistic == pytest.approx(0.820, abs=0.002)


def test_vectors_are_unit_length_float32_of_384_dimensions():
    vectors = get_encoder().encode(["hello", "a much longer sentence about refunds"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_commands_and_the_admin_start_without_heavy_imports():
    code = (
        "import django, sys; django.setup();"
        "from django.core.management import call_command; call_command('check');"
        "import searchsite.urls;"
        "heavy = {'torch', 'sentence_transformers', 'faiss', 'transformers',"
        " 'onnxruntime', 'onnx'};"
        "heavy &= set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
