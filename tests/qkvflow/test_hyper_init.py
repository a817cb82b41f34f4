"""Issue 12: the starts of the reproduction's arms. Every block parameter gets a gradient at initialisation (the
weight-tied arm starts from the discrete model's init, not from W0 = 0), and ``hyper_init: scaled`` generates
W(t) and the LayerNorm modulation at the discrete GPT-2 init's scale of 0.02."""

import math
from pathlib import Path

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from haliax import Axis
from levanter.models.lm_model import LmExample

from common_jax.launch import parse_config
from qkvflow_jax.main.train import TrainLmConfig
from qkvflow_jax.model import ParallelVectorField, time_features
from qkvflow_jax.units import HypernetInit, silu_second_moment

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "qkvflow"
VOCAB = Axis("vocab", 257)
ADAM_EPSILON = 1e-8


def _key(seed: int = 0):
    """A PRNG key whose random draws compile in seconds on CPU (threefry takes minutes on a loaded machine)."""
    return jax.random.key(seed, impl="unsafe_rbg")


LINEAR_UNITS = ("qkv", "attn_out", "fc", "proj")


def _tiny(yaml: str, *overrides: str):
    return parse_config(TrainLmConfig, CONFIGS / yaml, ["--model.max_seq_len", "16", *overrides]).model


def _block_gradients(model) -> dict[str, float]:
    """{parameter path: max |dL/dp|} over the block parameters (all but the embeddings and the final LN)."""
    rng = np.random.default_rng(0)
    tokens = hax.named(jnp.asarray(rng.integers(0, VOCAB.size, (4, 16)), jnp.int32), ("batch", "position"))
    batch = hax.vmap(LmExample.causal, "batch")(tokens)
    grads = eqx.filter_jit(eqx.filter_grad(lambda m, b: m.compute_next_token_loss(b).scalar()))(model, batch)
    blocks = grads.transformer.blocks if hasattr(grads, "transformer") else getattr(grads, "field", None)
    blocks = blocks if blocks is not None else grads.blocks
    leaves = jax.tree_util.tree_leaves_with_path(eqx.filter(blocks, eqx.is_inexact_array))
    return {jax.tree_util.keystr(path): float(jnp.max(jnp.abs(leaf))) for path, leaf in leaves}


@pytest.mark.parametrize("yaml", ["tiny_gpt2.yaml", "tiny_untied.yaml", "tiny_tied.yaml", "tiny_scaled.yaml"])
def test_every_block_parameter_trains_from_the_start(yaml):
    grads = _block_gradients(_tiny(yaml).build(VOCAB, key=_key()))
    assert len(grads) >= 12
    dead = {path: g for path, g in grads.items() if not g > 10 * ADAM_EPSILON}
    assert not dead, f"{yaml}: block parameters whose gradient Adam cannot see at init: {dead}"


def test_reference_start_leaves_the_layernorm_units_dead():
    """Under the paper's start (G = H = 0, W(t) ~ 1e-4) every linear unit's parameters have a non-zero gradient,
    but G and H get one below Adam's epsilon and the LN units' time MLPs exactly none (issue 12)."""
    grads = _block_gradients(_tiny("tiny.yaml").build(VOCAB, key=_key()))
    norm = {p: g for p, g in grads.items() if ".ln_" in p}
    assert {p: g for p, g in grads.items() if p not in norm and not g > 0} == {}
    assert all(g < ADAM_EPSILON for p, g in norm.items() if p.endswith((".G", ".H"))), norm
    assert all(g == 0 for p, g in norm.items() if ".time_mlp." in p), norm


def test_silu_second_moment():
    z = np.random.default_rng(0).normal(size=2_000_000) * math.sqrt(0.5)
    assert abs(silu_second_moment(0.5) - np.mean((z / (1 + np.exp(-z))) ** 2)) < 1e-3
    assert abs(silu_second_moment(1e-6) - 0.25e-6) < 1e-9  # SiLU(z) ~ z/2 near 0


def test_scaled_start_generates_weights_at_the_gpt2_scale():
    """Over 256 independently initialised fields of the tiny config's time shape (d = 8, K = 8; width 16 to keep
    it cheap: the scale does not depend on the width), the generated weights W(t) of the four linear units have a
    standard deviation within 20% of GPT-2's 0.02 at t = 0.25 and t = 1, and so do gamma(t) - 1 and beta(t) of
    both LN units; under the reference start W(t) is far below it.

    The scale holds in expectation: at d = 8 one model's ||e(t)||^2/d has a relative spread of about 1 (units.py),
    so a single model is not a test of the formula; 256 models put the pooled estimate within about 3%."""
    def pooled_std(config) -> np.ndarray:
        """(t, [W, gamma - 1, beta]) root mean squares over the 256 models, t in (0.25, 1)."""

        @eqx.filter_jit
        @eqx.filter_vmap
        def mean_squares(key):
            field = ParallelVectorField.init(config, key=key)
            rows = []
            for t in (0.25, 1.0):
                phi = time_features(config, t, jnp.float32)
                weights = [getattr(field, u).weight_and_bias(phi)[0].array for u in LINEAR_UNITS]
                norms = [field.ln_attn.scale_and_shift(phi), field.ln_mlp.scale_and_shift(phi)]
                rows.append(jnp.stack([sum(jnp.sum(w**2) for w in weights) / sum(w.size for w in weights),
                                       sum(jnp.mean((g.array - 1) ** 2) for g, _ in norms) / 2,
                                       sum(jnp.mean(b.array**2) for _, b in norms) / 2]))
            return jnp.stack(rows)

        return np.sqrt(np.asarray(mean_squares(jax.random.split(_key(), 256))).mean(axis=0))

    narrow = ("--model.hidden_dim", "16", "--model.num_heads", "2")
    scaled, reference = _tiny("tiny_scaled.yaml", *narrow), _tiny("tiny.yaml", *narrow)
    stds = pooled_std(scaled)
    assert np.all(np.abs(stds / 0.02 - 1) < 0.2), stds
    assert np.all(pooled_std(reference)[:, 0] < 0.002)
    init = HypernetInit.of("scaled", scaled.TimeFeat, scaled.TimeEmbed)
    assert init.a == pytest.approx(0.02 / math.sqrt(8)) and init.u1 == pytest.approx(1 / math.sqrt(17))
