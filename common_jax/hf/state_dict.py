"""Reading and writing checkpoint tensors (``name -> numpy array``) in the Hugging Face folder layout.

A folder holds ``model.safetensors`` (or shards listed in ``model.safetensors.index.json``) or, from older
checkpoints, ``pytorch_model.bin`` (or its shards). Tensors keep their stored dtype; ``bfloat16`` ones become
``ml_dtypes.bfloat16`` arrays (numpy has no bfloat16 of its own). Written folders always use one
``model.safetensors`` with the ``{"format": "pt"}`` metadata that ``transformers`` requires.
"""

import json
from pathlib import Path

import jax
import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.flax import load_file
from safetensors.numpy import save_file

SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
TORCH_BIN, TORCH_BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"


def _load_torch_file(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ImportError(f"{path} is a PyTorch pickle: reading it needs PyTorch "
                          "(pip install 'transformer-papers-jax[torch]'), or convert it to model.safetensors") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float().numpy().astype(ml_dtypes.bfloat16) if v.dtype == torch.bfloat16 else v.numpy()
            for k, v in state.items()}


def _shard_files(folder: Path, index_name: str) -> list[Path]:
    weight_map = json.loads((folder / index_name).read_text())["weight_map"]
    return [folder / name for name in dict.fromkeys(weight_map.values())]


def weights_file(folder: str | Path) -> Path:
    """The weights file (or shard index) of ``folder``; ``FileNotFoundError`` listing what was looked for."""
    folder = Path(folder)
    for name in (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_BIN_INDEX):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} holds no weights: expected {SAFETENSORS} or {TORCH_BIN} "
                            f"(or a sharded {SAFETENSORS_INDEX} / {TORCH_BIN_INDEX})")


def read_state_dict(folder: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint in ``folder``, as stored (dtype kept)."""
    state: dict[str, np.ndarray] = {}
    for file in _files(folder):
        if file.suffix == ".safetensors":  # read through JAX, which has bfloat16; x64 keeps 64-bit dtypes
            with jax.enable_x64(True):
                state.update({k: np.asarray(v) for k, v in load_file(file).items()})
        else:
            state.update(_load_torch_file(file))
    return state


def _files(folder: str | Path) -> list[Path]:
    path = weights_file(folder)
    return _shard_files(path.parent, path.name) if path.name.endswith(".index.json") else [path]


def read_shapes(folder: str | Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, from the safetensors headers without reading the data (a PyTorch pickle is loaded)."""
    shapes = {}
    for file in _files(folder):
        if file.suffix == ".safetensors":
            with safe_open(file, framework="numpy") as f:
                shapes.update({name: tuple(f.get_slice(name).get_shape()) for name in f.keys()})
        else:
            shapes.update({k: v.shape for k, v in _load_torch_file(file).items()})
    return shapes


def write_state_dict(tensors: dict[str, np.ndarray], folder: str | Path) -> Path:
    """``folder/model.safetensors`` holding ``tensors`` (contiguous copies), as ``transformers`` loads it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SAFETENSORS
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
    return path
