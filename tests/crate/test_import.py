"""Importing the reference's PyTorch state_dict (spec crate.md §3, §8.7) against an independent NumPy oracle."""

import math

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crate_jax import CrateConfig, export_torch_state_dict, load_torch_state_dict

CONFIG = CrateConfig(image_size=12, patch_size=3, num_channels=3, num_classes=7, hidden_dim=16, num_heads=2,
                     head_dim=5, num_layers=2)


def random_state_dict(config: CrateConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """A state_dict in the reference's exact key layout and torch shapes, with random values."""
    rng = np.random.default_rng(seed)
    d, P, n, C, inner = config.hidden_dim, config.patch_dim, config.Pos.size, config.num_classes, \
        config.num_heads * config.HeadSize.size
    r = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    sd = {"to_patch_embedding.1.weight": 1 + 0.1 * r(P), "to_patch_embedding.1.bias": r(P),
          "to_patch_embedding.2.weight": r(d, P) / math.sqrt(P), "to_patch_embedding.2.bias": r(d),
          "to_patch_embedding.3.weight": 1 + 0.1 * r(d), "to_patch_embedding.3.bias": r(d),
          "cls_token": r(1, 1, d), "pos_embedding": r(1, n, d),
          "mlp_head.0.weight": 1 + 0.1 * r(d), "mlp_head.0.bias": r(d),
          "mlp_head.1.weight": r(C, d), "mlp_head.1.bias": r(C)}
    for i in range(config.num_layers):
        p = f"transformer.layers.{i}."
        sd |= {p + "0.norm.weight": 1 + 0.1 * r(d), p + "0.norm.bias": r(d), p + "0.fn.qkv.weight": r(inner, d),
               p + "0.fn.to_out.0.weight": r(d, inner) / math.sqrt(inner), p + "0.fn.to_out.0.bias": r(d),
               p + "1.norm.weight": 1 + 0.1 * r(d), p + "1.norm.bias": r(d), p + "1.fn.weight": r(d, d) / 4}
    return sd


def _ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def oracle_logits(sd: dict, images_nchw: np.ndarray, config: CrateConfig, eta=0.1, lam=0.1) -> np.ndarray:
    """The reference equations in NumPy (f64) on NCHW input, written independently of the port."""
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    b, c, H, W = images_nchw.shape
    ph = pw = config.patch_size
    K, p = config.num_heads, config.HeadSize.size
    # einops: b c (h p1) (w p2) -> b (h w) (p1 p2 c)
    x = images_nchw.reshape(b, c, H // ph, ph, W // pw, pw).transpose(0, 2, 4, 3, 5, 1)
    x = x.reshape(b, (H // ph) * (W // pw), ph * pw * c).astype(np.float64)
    x = _ln(x, sd["to_patch_embedding.1.weight"], sd["to_patch_embedding.1.bias"])
    x = x @ sd["to_patch_embedding.2.weight"].T + sd["to_patch_embedding.2.bias"]
    x = _ln(x, sd["to_patch_embedding.3.weight"], sd["to_patch_embedding.3.bias"])
    x = np.concatenate([np.broadcast_to(sd["cls_token"], (b, 1, x.shape[-1])), x], axis=1) + sd["pos_embedding"]
    n = x.shape[1]
    for i in range(config.num_layers):
        g = lambda name: sd[f"transformer.layers.{i}.{name}"]  # noqa: E731
        y = _ln(x, g("0.norm.weight"), g("0.norm.bias"))
        w = (y @ g("0.fn.qkv.weight").T).reshape(b, n, K, p).transpose(0, 2, 1, 3)
        dots = w @ w.transpose(0, 1, 3, 2) / math.sqrt(p)
        attn = np.exp(dots - dots.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        o = (attn @ w).transpose(0, 2, 1, 3).reshape(b, n, K * p)
        x = x + o @ g("0.fn.to_out.0.weight").T + g("0.fn.to_out.0.bias")
        y = _ln(x, g("1.norm.weight"), g("1.norm.bias"))
        D = g("1.fn.weight")
        x = np.maximum(y + eta * (y @ D - (y @ D.T) @ D) - eta * lam, 0.0)
    z = _ln(x[:, 0], sd["mlp_head.0.weight"], sd["mlp_head.0.bias"])
    return z @ sd["mlp_head.1.weight"].T + sd["mlp_head.1.bias"]


def _port_logits(model, images_nchw):
    x = hax.named(jnp.asarray(images_nchw.transpose(0, 2, 3, 1)), ("batch", "height", "width", "channel"))
    return np.asarray(eqx.filter_jit(lambda m, x: m(x))(model, x).rearrange(("batch", "classes")).array)


@pytest.mark.parametrize("container", ["raw", "module"])
def test_imported_logits_match_numpy_oracle(container):
    sd = random_state_dict(CONFIG)
    assert len(sd) == 12 + 8 * CONFIG.num_layers
    images = np.random.default_rng(1).normal(size=(3, 3, 12, 12)).astype(np.float32)
    given = {f"module.{k}": v for k, v in sd.items()} if container == "module" else sd
    model = load_torch_state_dict(CONFIG, given)
    np.testing.assert_allclose(_port_logits(model, images), oracle_logits(sd, images, CONFIG), atol=1e-5)


def test_export_round_trips():
    sd = random_state_dict(CONFIG, seed=2)
    exported = export_torch_state_dict(load_torch_state_dict(CONFIG, sd))
    assert exported.keys() == sd.keys()
    for k in sd:
        np.testing.assert_array_equal(exported[k], sd[k])


def test_bad_keys_and_shapes_name_the_tensor():
    sd = random_state_dict(CONFIG)
    missing = {k: v for k, v in sd.items() if k != "transformer.layers.1.1.fn.weight"}
    with pytest.raises(KeyError, match=r"transformer\.layers\.1\.1\.fn\.weight"):
        load_torch_state_dict(CONFIG, missing)
    with pytest.raises(KeyError, match=r"transformer\.layers\.2\.0\.norm\.bias"):
        load_torch_state_dict(CONFIG, sd | {"transformer.layers.2.0.norm.bias": np.zeros(16, np.float32)})
    with pytest.raises(ValueError, match=r"transformer\.layers\.0\.0\.fn\.qkv\.weight"):
        load_torch_state_dict(CONFIG, sd | {"transformer.layers.0.0.fn.qkv.weight": np.zeros((16, 16), np.float32)})


def test_drop_head_keeps_a_fresh_head_for_new_classes():
    sd = random_state_dict(CONFIG)
    body = {k: v for k, v in sd.items() if not k.startswith("mlp_head.")}
    ten = CrateConfig(**{**CONFIG.__dict__, "num_classes": 10})
    model = load_torch_state_dict(ten, sd | {"mlp_head.1.weight": np.zeros((7, 16), np.float32)}, drop_head=True,
                                  key=jax.random.PRNGKey(3))
    assert model.head.weight.array.shape == (10, 16)
    exported = export_torch_state_dict(model)
    for k in body:
        np.testing.assert_array_equal(exported[k], body[k])


def test_pth_round_trip_through_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from crate_jax.torch_import import read_torch_checkpoint

    sd = random_state_dict(CONFIG, seed=4)
    path = tmp_path / "crate.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": torch.from_numpy(v) for k, v in sd.items()}}, path)
    loaded = read_torch_checkpoint(path)
    assert loaded.keys() == sd.keys()
    torch.save({"model": {k: torch.from_numpy(v) for k, v in sd.items()}}, tmp_path / "ft.pth")
    from_ft = read_torch_checkpoint(tmp_path / "ft.pth")
    for k in sd:
        np.testing.assert_array_equal(loaded[k], sd[k])
        np.testing.assert_array_equal(from_ft[k], sd[k])
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="neither a state_dict"):
        read_torch_checkpoint(tmp_path / "list.pth")
