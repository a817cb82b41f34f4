"""Spec §6.1 multi-image classification (design 1) offline: a tiny local HF image folder through the multi_view
entry point with the paper CNN, N = 3 all-rot90 views and SGD; the seeded 80/20 split and consecutive same-class
tuples; the SGD optimizer config against a hand-written optax chain; the paper CNN's shapes."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from common_jax.launch import parse_config
from common_jax.training.sgd import SgdConfig
from equitune_jax.config import MultiViewConfig
from equitune_jax.data.multi_view import make_tuples
from equitune_jax.models.view_cnn import PaperViewEncoder

from .test_configs import CONFIGS
from .test_entrypoints import _run_args

CLASSES, PER_CLASS, SIZE, VIEWS = 4, 15, 16, 3


@pytest.fixture
def image_folder(in_tmp):
    """A local HF dataset folder (one parquet "train" split) of 60 random 20x24 RGB images, sorted by class."""
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    pixels = np.random.default_rng(0).integers(0, 256, size=(len(labels), 20, 24, 3), dtype=np.uint8)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=CLASSES)})
    folder = in_tmp / "images"
    folder.mkdir()
    rows = {"image": [Image.fromarray(p) for p in pixels], "label": labels.tolist()}
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "train.parquet"))
    return folder, labels


def _config(root, folder, extra=()):
    """The Caltech101 YAML on the local folder at 16 px: paper CNN, three rot90 views, SGD, one epoch of batch 8."""
    return parse_config(MultiViewConfig, CONFIGS / "equitune" / "multi_image_caltech101.yaml",
                        _run_args(root, "mi") + ["--data.name", str(folder), "--data.image_size", str(SIZE),
                                                 "--model.image_size", str(SIZE), "--model.num_classes", str(CLASSES),
                                                 "--model.width", "4", "--model.features", "8", "--model.hidden", "8",
                                                 "--groups", "[rot90, rot90, rot90]", "--models", "[cnn, design1]",
                                                 "--test_groups", "[rot90, rot90, rot90]",
                                                 "--model.bn_calibration_batches", "2",
                                                 "--train_epochs", "1", "--trainer.train_batch_size", "8", *extra])


@pytest.mark.parametrize("order", ["split", "dataset"])
def test_tuples_are_consecutive_same_class_from_the_seeded_80_20_split(in_tmp, image_folder, order):
    folder, labels = image_folder
    splits = _config(in_tmp, folder, ["--tuple_order", order]).load_data()
    # sklearn's train_test_split(range(60), test_size=0.2, random_state=1234): ceil(12) test items first; its items
    # come back in that permuted order, which the reference's tuples keep (order "split")
    perm = np.random.RandomState(1234).permutation(len(labels))
    for index, part in ((splits.train_index, perm[12:]), (splits.test_index, perm[:12])):
        assert index.shape[1] == VIEWS and set(index.ravel().tolist()) <= set(part.tolist())
        assert (labels[index] == labels[index[:, :1]]).all()  # same class in every tuple
        for c in range(CLASSES):  # the class's images of the part, in split or dataset order, cut into 3-tuples
            members = [i for i in part if labels[i] == c]
            members = sorted(members) if order == "dataset" else members
            expected = np.asarray(members[:len(members) // VIEWS * VIEWS]).reshape(-1, VIEWS)
            np.testing.assert_array_equal(index[labels[index[:, 0]] == c], expected)
    assert splits.train.views.shape[1:] == (VIEWS, SIZE, SIZE, 3)
    np.testing.assert_array_equal(splits.test.labels, labels[splits.test_index[:, 0]])


def test_paper_cnn_design1_trains_with_sgd_and_is_exactly_invariant(in_tmp, image_folder):
    from equitune_jax.main import multi_view

    folder, _ = image_folder
    config = _config(in_tmp, folder)
    results = multi_view.main(config)
    assert set(results) == {"cnn", "design1"}
    assert results["design1"]["forward_passes"] == 2 * 4 * VIEWS  # φ and ψ over Σ|G_i| = 12 orbit images
    assert results["design1"]["clean"] == results["design1"]["transformed"]
    assert json.loads((in_tmp / "logs" / "mi" / "results.json").read_text()) == results
    splits = config.load_data()
    assert config.train_steps(len(splits.train.labels)) == math.ceil(len(splits.train.labels) / 8)  # one epoch

    # exact invariance of the logits themselves (inference mode), beyond equal accuracies
    model = eqx.nn.inference_mode(config.build("design1", key=jax.random.PRNGKey(0)))
    logits = jax.jit(jax.vmap(lambda v: model(tuple(v))))
    np.testing.assert_allclose(logits(splits.test.views), logits(splits.test_transformed.views), atol=1e-5)


def test_mnist10k_tuples_are_unchanged():
    from common_jax.data.images import load_mnist10k

    config = parse_config(MultiViewConfig, CONFIGS / "equitune" / "multi_view.yaml",
                          ["--train_tuples", "20", "--test_tuples", "10", "--data_seed", "3"])
    splits = config.load_data()
    images, labels = load_mnist10k()
    np.testing.assert_array_equal(splits.train_index, make_tuples(labels[:8000], 20, 2, 3))
    np.testing.assert_array_equal(splits.test_index, make_tuples(labels[8000:], 10, 2, 4) + 8000)
    np.testing.assert_array_equal(splits.train.views, (images.astype(np.float32) / 255.0)[splits.train_index])


def test_sgd_config_matches_torch_style_optax_chain():
    params = {"w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.asarray([0.25, -1.0])}
    grads = [{"w": jnp.asarray([[0.1, 0.2], [-0.3, 0.4]]), "b": jnp.asarray([1.0, -0.5])},
             {"w": jnp.asarray([[-0.2, 0.1], [0.3, 0.0]]), "b": jnp.asarray([0.5, 0.5])}]
    config = SgdConfig(learning_rate=0.01, momentum=0.9, weight_decay=1e-3, default_weight_decay_mask=False,
                       warmup=0.0, lr_schedule="constant")
    ours = config.build(10)
    # torch.optim.SGD(lr, momentum, weight_decay): g += wd·θ; buf = momentum·buf + g; θ -= lr·buf
    reference = optax.chain(optax.add_decayed_weights(1e-3), optax.trace(decay=0.9), optax.scale(-0.01))
    p_ours, p_ref, s_ours, s_ref = params, params, ours.init(params), reference.init(params)
    for g in grads:
        u_ours, s_ours = ours.update(g, s_ours, p_ours)
        u_ref, s_ref = reference.update(g, s_ref, p_ref)
        p_ours, p_ref = optax.apply_updates(p_ours, u_ours), optax.apply_updates(p_ref, u_ref)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8), p_ours, p_ref)
    first = jax.tree.map(lambda p, g: p - 0.01 * (g + 1e-3 * p), params, grads[0])  # step 1 by hand
    u, _ = ours.update(grads[0], ours.init(params), params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), optax.apply_updates(params, u), first)


def test_sgd_config_is_the_sgd_choice_and_adam_stays_default():
    config = parse_config(MultiViewConfig, CONFIGS / "equitune" / "multi_image_15scene.yaml")
    assert isinstance(config.optimizer, SgdConfig) and config.model.arch == "paper"
    assert type(parse_config(MultiViewConfig, CONFIGS / "equitune" / "multi_view.yaml").optimizer).__name__ == \
        "AdamConfig"
    with pytest.raises(ValueError, match="optimizer.momentum"):
        SgdConfig(momentum=1.5)


@pytest.mark.parametrize("size,blocks,side", [(64, 3, 4), (32, 2, 5)])  # 64→60→30→26→13→9→4; 32→28→14→10→5
def test_paper_cnn_shapes(size, blocks, side):
    encoder = PaperViewEncoder(size, 3, 16, 64, key=jax.random.PRNGKey(0))
    assert len(encoder.convs) == len(encoder.norms) == blocks and encoder.linear.in_features == 16 * side * side
    x = jax.random.normal(jax.random.PRNGKey(1), (size, size, 3))
    assert encoder(x, key=jax.random.PRNGKey(2)).shape == (64,)  # train mode: dropout draws from the key
    assert eqx.nn.inference_mode(encoder)(x).shape == (64,)
    if blocks == 3:  # the third block has its own weights (the reference reuses the second's)
        assert not np.array_equal(encoder.convs[1].weight, encoder.convs[2].weight)


def test_random_crop_cuts_a_window_of_the_zero_padded_image():
    from common_jax.data.augment import random_crop

    images = jax.random.uniform(jax.random.PRNGKey(0), (6, 8, 8, 2)) + 1.0  # no zeros inside the image
    out = np.asarray(random_crop(jax.random.PRNGKey(1), images, 4))
    padded = np.pad(np.asarray(images), ((0, 0), (4, 4), (4, 4), (0, 0)))
    for crop, pad in zip(out, padded):
        windows = [(dy, dx) for dy in range(9) for dx in range(9) if np.array_equal(pad[dy:dy + 8, dx:dx + 8], crop)]
        assert len(windows) == 1


def test_batch_norm_population_statistics_are_training_mode_ones():
    """levanter hands back its eval_model in inference mode; calibrating it must give the statistics of the training
    forward pass (batch statistics in every layer), as calibrating the training-mode model does."""
    from equitune_jax.main.multi_view import calibrate_batch_norm, training_views
    from equitune_jax.models.batch_norm import batch_norms
    from equitune_jax.models.view_cnn import multi_view_cnn

    model = multi_view_cnn(2, 16, 1, 4, 8, 8, 4, arch="paper", norm="batch", key=jax.random.PRNGKey(0))
    views = np.random.default_rng(0).normal(1.0, 2.0, size=(32, 2, 16, 16, 1)).astype(np.float32)
    prepare = training_views(None, None, (0.0,), (1.0,))
    key = jax.random.PRNGKey(1)
    trained = calibrate_batch_norm(model, views, prepare, 2, 16, key)
    evaluated = calibrate_batch_norm(eqx.nn.inference_mode(model), views, prepare, 2, 16, key)
    for a, b in zip(batch_norms(trained), batch_norms(evaluated), strict=True):
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.var, b.var, rtol=1e-5, atol=1e-6)
    assert abs(float(batch_norms(trained)[0].mean[0])) > 1e-3  # the statistics were really set
