"""OT fusion of the common_jax ViT: the exact tests of spec fusion.md §16 (1-4, 7, 9) and error handling."""

import dataclasses

import numpy as np
import pytest

from fusion_jax import ActsConfig, FusionConfig, SinkhornConfig, fuse, fuse_with_maps, vanilla_average
from fusion_jax.adapters.vit import collect_taps, taps_needed, tensor_specs
from fusion_jax.adapters.vit_symmetry import permute_vit, widen_mlp
from fusion_jax.fuse import probe_subset
from fusion_jax.params import read_params
from fusion_jax.probes import probe_indices

from .helpers import TINY, assert_same_weights, config, logits, max_difference, probe_images, tiny_vit


@pytest.fixture(scope="module")
def model():
    return tiny_vit(0)


@pytest.fixture(scope="module")
def permuted(model):
    return permute_vit(model, seed=7)


@pytest.fixture(scope="module")
def images():
    return probe_images()


@pytest.mark.parametrize("cost", ["acts", "wts"])
def test_emd_self_fusion_is_the_identity(model, images, cost):
    assert_same_weights(fuse([model, model], 1, config(cost=cost, solver="emd"), images), model)


def test_permuted_copy_computes_the_same_function(model, permuted, images):
    np.testing.assert_allclose(logits(permuted, images), logits(model, images), atol=2e-5)
    assert max_difference(permuted, model) > 0.1  # and it really is a different parameter vector


@pytest.mark.parametrize("cost", ["acts", "wts"])
@pytest.mark.parametrize("qk_fusion", ["separate", "eq_t_map", "joint"])
def test_permuted_copy_fuses_back_to_the_original_exactly(model, permuted, images, cost, qk_fusion):
    cfg = config(cost=cost, solver="emd", qk_fusion=qk_fusion)
    fused = fuse([permuted, model], 1, cfg, images)
    assert_same_weights(fused, model)
    np.testing.assert_array_equal(logits(fused, images), logits(model, images))


def test_fusing_into_the_permuted_anchor_is_function_equivalent(model, permuted, images):
    fused = fuse([model, permuted], 1, config(solver="emd"), images)
    assert_same_weights(fused, permuted)
    np.testing.assert_allclose(logits(fused, images), logits(model, images), atol=2e-5)


def test_vanilla_average_of_a_permuted_copy_breaks_the_function(model, permuted, images):
    averaged = vanilla_average([permuted, model])
    error = np.abs(logits(averaged, images) - logits(model, images)).max()
    assert error > 10 * np.abs(logits(model, images)).std() or error > 0.5, error


def test_alpha_extremes(model, images):
    other = tiny_vit(1)
    assert_same_weights(fuse([other, model], 1, config(alpha=1.0), images), model)  # any maps
    permuted = permute_vit(model, seed=3)
    assert_same_weights(fuse([permuted, model], 1, config(alpha=0.0, solver="emd"), images), model)


def test_sinkhorn_self_fusion_approaches_the_identity_as_reg_shrinks(model, images):
    errors = [max_difference(fuse([model, model], 1, config(sinkhorn=SinkhornConfig(reg=reg)), images), model)
              for reg in (0.3, 0.1, 0.05, 0.02)]
    assert errors[0] > 1e-3  # soft self-fusion is not the identity
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 10, errors


@pytest.mark.parametrize("reference", [False, True])
def test_net2net_widened_model_aligns_to_its_narrow_original(model, images, reference):
    wide = widen_mlp(model, factor=2, seed=0)
    np.testing.assert_allclose(logits(wide, images), logits(model, images), atol=2e-5)
    cfg = config(solver="emd", alpha=0.0, reference_normalisation=reference)
    aligned = fuse([wide, model], 1, cfg, images)  # alpha 0: the aligned wide model alone, in the anchor's shapes
    error = np.abs(logits(aligned, images) - logits(model, images)).max()
    if reference:
        assert error > 0.1, error  # n_A T on the outgoing side doubles every MLP output row
    else:
        assert error < 1e-4, error


def test_heterogeneous_widths_fuse_into_the_anchors_shapes(model, images):
    wide = tiny_vit(2, hidden_dim=48, num_heads=6, mlp_dim=96)
    fused = fuse([wide, model], 1, config(), images)
    shapes = {k: v.shape for k, v in read_params(fused, tensor_specs(fused)).items()}
    assert shapes == {k: v.shape for k, v in read_params(model, tensor_specs(model)).items()}
    assert np.all(np.isfinite(logits(fused, images)))


def test_n_permuted_copies_fuse_back_to_the_anchor(model, images):
    copies = [permute_vit(model, seed=s) for s in (11, 12)]
    result = fuse_with_maps([copies[0], model, copies[1]], 1, config(solver="emd"), images)
    assert_same_weights(result.model, model)
    assert set(result.maps) == {0, 2}  # one set of maps per aligned model


def test_reference_alpha_quirk_weighs_the_anchor_half_inside_blocks(model, images):
    models = [tiny_vit(3), model, tiny_vit(4)]
    cfg = dict(solver="emd", cost="wts")
    quirk = read_params(f := fuse(models, 1, config(reference_alpha_quirk=True, **cfg), images), tensor_specs(f))
    third = read_params(f := fuse(models, 1, config(**cfg), images), tensor_specs(f))
    half = read_params(f := fuse(models, 1, config(alpha=0.5, **cfg), images), tensor_specs(f))
    for name in quirk:
        expected = half[name] if name.startswith("blocks.") else third[name]
        np.testing.assert_allclose(quirk[name], expected, atol=1e-6, err_msg=name)
    assert not np.allclose(third["blocks.0.mlp.fc1.weight"], half["blocks.0.mlp.fc1.weight"])


@pytest.mark.parametrize("policy", ["weighted_scalar", "weighted_matrix", "only_resid", "no_resid"])
def test_every_residual_policy_keeps_the_permuted_copy_exact(model, permuted, images, policy):
    assert_same_weights(fuse([permuted, model], 1, config(solver="emd", resid_policy=policy), images), model)


def test_cls_own_map_is_exact_on_a_permuted_copy(model, permuted, images):
    assert_same_weights(fuse([permuted, model], 1, config(solver="emd", cls_map="own"), images), model)


def test_errors_name_the_field_or_tensor(model, images):
    with pytest.raises(ValueError, match="model.num_layers"):
        fuse([tiny_vit(1, num_layers=3), model], 1, config(), images)
    with pytest.raises(ValueError, match="needs probe data"):
        fuse([model, model], 1, config())
    with pytest.raises(ValueError, match="fusion.qk_fusion"):
        FusionConfig(qk_fusion="both")
    with pytest.raises(ValueError, match="fusion.sinkhorn.reg"):
        SinkhornConfig(reg=0.0)
    with pytest.raises(ValueError, match="models.anchor"):
        fuse([model, model], 2, config(), images)
    with pytest.raises(ValueError, match="tensor patch_embed.proj.weight"):
        vanilla_average([tiny_vit(1, hidden_dim=48, num_heads=4), model])
    from fusion_jax.params import write_params

    params = read_params(model, tensor_specs(model))
    params["blocks.1.mlp.fc1.weight"] = params["blocks.1.mlp.fc1.weight"][:, :5]
    with pytest.raises(ValueError, match="tensor blocks.1.mlp.fc1.weight"):
        write_params(model, tensor_specs(model), params)
    assert dataclasses.is_dataclass(FusionConfig())


MAP_UNITS = ("q", "k", "v", "o", "fc1", "fc2")


def test_fuse_with_maps_returns_named_maps_and_reapplies_them_exactly(model, images):
    other = tiny_vit(5)
    cfg = config(cls_map="own")  # Sinkhorn: soft maps, so re-application is a real check
    result = fuse_with_maps([other, model], 1, cfg, images)
    names = {"patch", "pos", "cls"} | {f"layer{i}.{u}" for i in range(TINY.num_layers) for u in MAP_UNITS}
    assert set(result.maps) == set(result.costs) == {0} and set(result.maps[0]) == set(result.costs[0]) == names
    for name, tmap in result.maps[0].items():
        n = TINY.mlp_dim if name.endswith("fc1") else TINY.hidden_dim
        assert tmap.dtype == result.costs[0][name].dtype == np.float32
        assert tmap.shape == result.costs[0][name].shape == (n, n), name
        np.testing.assert_allclose(tmap.sum(1), 1.0, atol=1e-5, err_msg=name)  # T~ = n T: row sums 1
        assert 0.0 <= result.costs[0][name].min() and result.costs[0][name].max() <= 1.0
    assert_same_weights(result.model, fuse([other, model], 1, cfg, images))
    again = fuse_with_maps([other, model], 1, cfg, None, maps=result.maps)  # no solver, no activations
    assert_same_weights(again.model, result.model)
    assert again.costs == {0: {}}
    np.testing.assert_array_equal(again.maps[0]["layer1.fc1"], result.maps[0]["layer1.fc1"])


def test_exact_maps_of_a_permuted_copy_are_permutations(model, permuted, images):
    result = fuse_with_maps([permuted, model], 1, config(solver="emd", qk_fusion="joint"), images)
    assert "layer0.qk" in result.maps[0] and "layer0.q" not in result.maps[0]
    for name, tmap in result.maps[0].items():
        assert set(np.unique(tmap)) == {0.0, 1.0} and np.all(tmap.sum(0) == 1) and np.all(tmap.sum(1) == 1), name
    p = read_params(permuted, tensor_specs(permuted))["blocks.0.mlp.fc1.bias"]
    np.testing.assert_array_equal(p @ result.maps[0]["layer0.fc1"],
                                  read_params(model, tensor_specs(model))["blocks.0.mlp.fc1.bias"])


def test_given_maps_are_checked_by_name_and_shape(model, images):
    maps = fuse_with_maps([tiny_vit(6), model], 1, config(cost="wts"), images).maps
    missing = {0: {k: v for k, v in maps[0].items() if k != "layer1.v"}}
    with pytest.raises(ValueError, match="no map 'layer1.v'"):
        fuse_with_maps([tiny_vit(6), model], 1, config(cost="wts"), maps=missing)
    cut = {0: {**maps[0], "layer0.fc1": maps[0]["layer0.fc1"][:, :32]}}
    with pytest.raises(ValueError, match=r"map 'layer0.fc1' has shape \(64, 32\)"):
        fuse_with_maps([tiny_vit(6), model], 1, config(), maps=cut)
    with pytest.raises(ValueError, match="does not use: \\['layer9.q'\\]"):
        fuse_with_maps([tiny_vit(6), model], 1, config(), maps={0: {**maps[0], "layer9.q": maps[0]["layer0.q"]}})
    with pytest.raises(ValueError, match="for models \\[0\\]"):
        fuse_with_maps([tiny_vit(6), model], 1, config(), maps={1: maps[0]})


def test_taps_fed_one_at_a_time_equal_the_batched_pass(model, images):
    """The reference feeds its probes one at a time; these models have no batch statistics, so one batched
    pass (and a padded last batch) gives the same activations, up to float32 rounding (XLA blocks the
    reductions differently per batch size: differences ~1e-6)."""
    keep = taps_needed(model, config())
    batched = collect_taps(model, images, keep, batch_size=len(images))
    assert batched["layer1.fc1"].shape == (len(images), 1, TINY.mlp_dim)  # last block: CLS only
    assert batched["layer0.q"].shape == (len(images), 5, TINY.hidden_dim)  # CLS + the central 2 x 2 patches
    for batch_size in (1, 5):
        chunked = collect_taps(model, images, keep, batch_size=batch_size)
        for name in keep:
            np.testing.assert_allclose(chunked[name], batched[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_probe_sampling_reference_and_random():
    n, seed = 1000, 3
    reference = probe_indices(n, 40, seed, "reference")
    # datasets' train_test_split: test part = the first ceil(0.1 n) of default_rng(seed).permutation(n)
    np.testing.assert_array_equal(reference, np.random.default_rng(seed).permutation(n)[:40])
    assert len(probe_indices(n, 500, seed, "reference")) == 100  # at most the held-out 10 %
    random = probe_indices(n, 40, seed, "random")
    assert len(set(random)) == 40 and np.all(np.diff(random) > 0) and not np.array_equal(np.sort(reference), random)
    data = np.arange(n) * 10
    cfg = config(acts=ActsConfig(num_samples=40, seed=seed))
    np.testing.assert_array_equal(probe_subset(data, cfg), data[reference])
    with pytest.raises(ValueError, match="fusion.acts.sampling"):
        ActsConfig(sampling="first")
