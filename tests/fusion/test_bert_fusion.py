"""BERT MLM fusion (spec fusion.md §14.1): the post-LN adapter passes the exact tests of §16 (1, 2, 3)."""

import dataclasses

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common_jax.models.bert import BertConfig
from fusion_jax import ActsConfig, FusionConfig, fuse, fuse_with_maps, vanilla_average
from fusion_jax.adapters.bert_symmetry import permute_bert

from .helpers import assert_same_weights, max_difference

TINY = BertConfig(vocab_size=97, max_position=16, hidden_dim=32, num_layers=2, num_heads=4, mlp_dim=64)


@eqx.filter_jit
def _apply(model, ids):
    return model(ids)


def logits(model, ids: np.ndarray) -> np.ndarray:
    return np.asarray(_apply(model, hax.named(jnp.asarray(ids), ("batch", "position"))).array)


@pytest.fixture(scope="module")
def model():
    return TINY.build(key=jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(0).integers(0, TINY.vocab_size, (12, 16)).astype(np.int32)


def config(**changes):
    return FusionConfig(acts=ActsConfig(num_samples=12, batch_size=12), **changes)


def test_bert_self_fusion_and_permuted_copy_are_exact(model, ids):
    permuted = permute_bert(model, seed=5)
    np.testing.assert_allclose(logits(permuted, ids), logits(model, ids), atol=5e-5)
    assert max_difference(permuted, model) > 0.01
    for cost in ("acts", "wts"):
        assert_same_weights(fuse([model, model], 1, config(cost=cost, solver="emd"), ids), model)
        for qk in ("separate", "joint"):
            fused = fuse([permuted, model], 1, config(cost=cost, solver="emd", qk_fusion=qk), ids)
            assert_same_weights(fused, model)
    result = fuse_with_maps([permuted, model], 1, config(solver="emd", bert_ln_reference_order=True), ids)
    assert_same_weights(result.model, model)
    units = ("q", "k", "v", "o", "fc1", "fc2")
    assert set(result.maps[0]) == {"word", "position", "token_type", "transform"} | {
        f"layer{i}.{u}" for i in range(TINY.num_layers) for u in units}
    assert result.maps[0]["word"].shape == (TINY.hidden_dim, TINY.hidden_dim)
    averaged = vanilla_average([permuted, model])
    assert np.abs(logits(averaged, ids) - logits(model, ids)).max() > 0.05


def test_bert_fusion_of_independent_models_keeps_the_anchor_shapes(model, ids):
    wide = dataclasses.replace(TINY, hidden_dim=48, num_heads=6, mlp_dim=80).build(key=jax.random.PRNGKey(1))
    fused = fuse([wide, model], 1, config(), ids)
    assert [x.shape for x in jax.tree.leaves(eqx.filter(fused, eqx.is_array))] == \
        [x.shape for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]
    assert np.all(np.isfinite(logits(fused, ids)))
    with pytest.raises(ValueError, match="model.num_layers"):
        fuse([dataclasses.replace(TINY, num_layers=3).build(key=jax.random.PRNGKey(2)), model], 1, config(), ids)


def test_mlm_data_chunks_and_masking_follow_the_bert_recipe():
    from fusion_jax.mlm_data import MlmDataConfig

    splits = MlmDataConfig(seq_len=32, max_validation_chunks=8).load()
    assert splits.vocab_size == 30522 and len(splits.validation.chunks) == 8
    chunks = splits.train.chunks
    special = splits.train.special
    assert np.all(chunks[:, 0] == special["cls"]) and np.all(chunks[:, -1] == special["sep"])
    ids, mask = splits.train.masked(3)
    np.testing.assert_array_equal(splits.train.masked(3)[0], ids)  # a pure function of the index
    selected = np.concatenate([splits.train.masked(i)[1] for i in range(200)]).astype(bool)
    masked_ids = np.concatenate([splits.train.masked(i)[0] for i in range(200)])
    assert 0.12 < selected.mean() < 0.18  # 15 % of the (non-special) positions
    assert 0.7 < (masked_ids[selected] == special["mask"]).mean() < 0.9  # 80 % of them become [MASK]
    assert mask[0] == 0 and mask[-1] == 0  # [CLS] and [SEP] are never selected
