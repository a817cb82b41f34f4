"""Spec §9 tests 6 (discretiser, F1/F8) and 14 (LoRA start, F3)."""

import jax
import numpy as np
import pytest

from qkvflow_jax import add_lora, discretise
from qkvflow_jax.discrete import steps_from, trainable_filter

from .tiny import activations, build, logits, max_abs_diff, small_config, token_ids


def test_discretise_reproduces_ode_forward_f32():
    model = build(small_config())
    ids = token_ids()
    discrete = discretise(model, 4)
    assert discrete.config.num_layers == 4 and discrete.blocks.qkv_w.axes[0].size == 4
    assert max_abs_diff(logits(model, ids), logits(discrete, ids)) <= 1e-6
    other = discretise(model, 3)
    assert max_abs_diff(logits(model, ids), logits(other, ids)) > 1e-4
    # zero-shot depth change on the continuous model equals its discretisation at the same L'
    assert max_abs_diff(activations(model, ids, 3), activations(other, ids)) <= 1e-6


def test_discretise_93_layers_round_not_floor():
    assert all(steps_from(dt=1 / n) == n for n in (93, 99, 105, 117, 123, 186, 198))
    model = build(small_config())
    assert discretise(model, dt=1 / 93).config.num_layers == 93
    assert discretise(model, 93).blocks.fc_w.axes[0].size == 93
    with pytest.raises(ValueError, match="not 1/L'"):
        steps_from(dt=0.3)


def test_lora_equals_base_at_start_and_reference_init_does_not():
    with jax.enable_x64(True):
        base = discretise(build(small_config()), 4)
        ids = token_ids()
        lora = add_lora(base, rank=3, alpha=8.0, key=jax.random.PRNGKey(0))
        np.testing.assert_array_equal(logits(lora, ids).array, logits(base, ids).array)
        reference = add_lora(base, rank=3, alpha=8.0, key=jax.random.PRNGKey(0), init="reference")
        assert max_abs_diff(logits(reference, ids), logits(base, ids)) > 0
        spec = trainable_filter(lora, "lora")
        assert spec.lora["qkv_w"].a is True and spec.blocks.qkv_w is False
        assert spec.ln_f.weight is False and spec.embeddings.token_embeddings.weight is True
