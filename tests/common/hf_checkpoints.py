"""Tiny random torch models saved in the HF / timm layouts, and the comparisons the import tests make."""

import shutil
from pathlib import Path

import jax
import numpy as np
from safetensors.numpy import load_file, save_file

TOLERANCE = 1e-5  # float32 logits, project forward vs the torch forward


def spread_weights(module, std: float = 0.2, seed: int = 0):
    """``module`` in eval mode with every parameter redrawn from N(0, std^2), so activations are far from the
    small-init regime where different nonlinearities would agree."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)
    return module.eval()


def nchw_images(n: int = 3, size: int = 8, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randn(n, channels, size, size).astype(np.float32)


def nhwc(images: np.ndarray):
    import haliax as hax

    return hax.named(images.transpose(0, 2, 3, 1), ("batch", "height", "width", "channel"))


def forward(model, *args):
    """``model(*args)`` in inference mode, jitted."""
    import equinox as eqx

    return eqx.filter_jit(lambda m, *a: m(*a))(eqx.nn.inference_mode(model), *args)


def max_diff(named, reference) -> float:
    return float(np.max(np.abs(np.asarray(named.array if hasattr(named, "array") else named) - np.asarray(reference))))


def assert_parity(architecture: str, project, reference) -> None:
    """Project logits within :data:`TOLERANCE` of the torch ``reference``; prints the parity-table row (``pytest -s``
    shows it: ``python -m pytest tests/common/test_hf_*.py -s -q | grep "max |logit diff|"``)."""
    diff = max_diff(project, reference)
    print(f"\nparity: {architecture}: max |logit diff| = {diff:.1e}")
    assert diff <= TOLERANCE, f"{architecture}: max |logit diff| {diff} > {TOLERANCE}"


def assert_bit_exact(a, b) -> None:
    """Same tree structure and every array leaf equal bit for bit."""
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if hasattr(x, "dtype"):
            assert x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))
        else:
            assert x == y


def random_project_model(config, std: float = 0.2, seed: int = 0):
    """A project model of ``config`` with every weight drawn from N(0, std^2) in numpy: the structure a trained model
    has, without compiling the initialiser (slow on a loaded CPU)."""
    import equinox as eqx
    import jax.numpy as jnp

    rng = np.random.RandomState(seed)
    abstract = eqx.filter_eval_shape(lambda: config.build(key=jax.random.PRNGKey(0)))
    draw = lambda s: jnp.asarray(rng.normal(size=s.shape) * std, s.dtype)  # noqa: E731
    return jax.tree.map(lambda s: draw(s) if isinstance(s, jax.ShapeDtypeStruct) else s, abstract)


def mlp_activation(config):
    """The activation function of the MLPs of the model ``config`` builds (read off the abstract model)."""
    import equinox as eqx

    model = eqx.filter_eval_shape(lambda: config.build(key=jax.random.PRNGKey(0)))
    return (model.blocks if hasattr(model, "blocks") else model.layers).stacked.mlp.activation


def edited_copy(folder: Path, tmp_path: Path, *, drop: str | None = None, add: str | None = None,
                reshape: str | None = None) -> Path:
    """A copy of the checkpoint ``folder`` whose ``model.safetensors`` lacks tensor ``drop``, has an extra tensor
    ``add``, or has tensor ``reshape`` one row short."""
    copy = tmp_path / f"edited_{folder.name}"
    shutil.copytree(folder, copy)
    tensors = load_file(copy / "model.safetensors")
    if drop:
        del tensors[drop]
    if add:
        tensors[add] = np.zeros((2,), np.float32)
    if reshape:
        tensors[reshape] = tensors[reshape][:-1]
    save_file(tensors, str(copy / "model.safetensors"), metadata={"format": "pt"})
    return copy
