"""N views, one image group per view: CNN, CNN + group augmentation, design 1, and product equitune zero-shot
and fine-tuned; clean and transformed test accuracy. Two-view mnist10k under rot90 × hflip (spec §9.1, issue
"multi_view") and the paper's multi-image classification on Caltech101 / 15Scene (spec §6.1).

    python -m equitune_jax.main.multi_view --config_path configs/equitune/multi_view.yaml
    python -m equitune_jax.main.multi_view --config_path configs/equitune/multi_image_caltech101.yaml

Every model trains on levanter's Trainer (sub-run ids ``<trainer.id>-<model>``); a BatchNorm model (``model.norm:
batch``) gets its population statistics after training. Returns ``{model: {"clean", "transformed", "agreement",
"invariance_gap", "forward_passes", "encoder_calls", "train_seconds"}}`` (test measures: :func:`invariance_measures`;
``encoder_calls``: per-view encoder passes per example, the unit both multi-view costs share), plus ``per_epoch`` test
measures and ``reference_metric`` (the best accuracies, the reference's metric) with ``eval_every_epoch``.
"""

import dataclasses
import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np
import optax

from common_jax.data.augment import AugmentConfig
from common_jax.launch import run_main
from common_jax.training.run_setup import ensure_json_tracker, write_run_results

from ..config import MultiViewConfig
from ..data.multi_view import MultiViewDataset, MultiViewExample
from ..models.batch_norm import BATCH_AXIS, batch_norms, population_statistics
from ..models.view_cnn import MultiViewDesign1, product_equitune
from ..training import example_keys, fit, scalar_loss, sub_run, weighted_mean

logger = logging.getLogger(__name__)


def _split_views(views):
    return tuple(views[:, i] for i in range(views.shape[1]))


def random_group_elements(groups, views, key):
    """Each view of each example moved by an independent uniformly random element of its group."""
    keys = jax.random.split(key, len(groups))
    return tuple(_random_element(group, v, k) for group, v, k in zip(groups, views, keys))


def _random_element(group, views, key):
    picks = jax.random.randint(key, (views.shape[0],), 0, group.size)
    branches = [lambda x, g=g: group.act_input(g, x) for g in group.elements]
    return jax.vmap(lambda i, x: jax.lax.switch(i, branches, x))(picks, views)


def augment_views(augment: AugmentConfig, views, key, mean, std):
    """``augment`` on every view of a batch ``[batch, view, H, W, C]``, independently per image, on the [0, 1] image
    (before the ``mean``/``std`` normalisation, so a padded crop pads black as torchvision's ``RandomCrop`` does)."""
    batch, num_views = views.shape[:2]
    flat = views.reshape(batch * num_views, *views.shape[2:]) * std + mean
    return ((augment.apply(flat, key) - mean) / std).reshape(views.shape)


def training_views(augment: AugmentConfig | None, augment_groups, mean, std):
    """``(views [batch, view, H, W, C], key) -> N-tuple of [batch, H, W, C]``: the training-time view pipeline,
    ``augment`` on every view, then with ``augment_groups`` a random group element per view per example."""
    mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)

    def prepare(views, key):
        k_aug, k_group = jax.random.split(key)
        if augment is not None and augment.enabled:
            views = augment_views(augment, views, k_aug, mean, std)
        views = _split_views(views)
        if augment_groups is not None:
            views = random_group_elements(augment_groups, views, k_group)
        return views

    return prepare


def make_loss(prepare):
    """Cross-entropy of ``model(views)``; in training (``key`` given) the views first go through ``prepare``
    (:func:`training_views`). The examples are vmapped under the batch axis name (BatchNorm statistics)."""

    def loss_fn(model, batch: MultiViewExample, *, key=None):
        if key is None:
            views = _split_views(batch.views.array)
            logits = jax.vmap(lambda *v: model(v), axis_name=BATCH_AXIS)(*views)
        else:
            key, k_prep = jax.random.split(key)
            views = prepare(batch.views.array, k_prep)
            keys = example_keys(key, views[0].shape[0])
            logits = jax.vmap(lambda k, *v: model(v, key=k), axis_name=BATCH_AXIS)(keys, *views)
        labels = batch.label.array
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
        return scalar_loss(nll, batch.weight), {"accuracy": weighted_mean(correct, batch.weight)}

    return loss_fn


def test_logits(model, views: np.ndarray, batch_size: int) -> np.ndarray:
    """[tuples, classes] logits of ``model`` (inference mode) on every tuple ``views [tuples, view, H, W, C]``."""
    model = eqx.nn.inference_mode(model)
    run = eqx.filter_jit(lambda m, v: jax.vmap(lambda *x: m(x))(*_split_views(v)))
    return np.concatenate([np.asarray(run(model, views[i:i + batch_size])) for i in range(0, len(views), batch_size)])


def invariance_measures(model, clean: MultiViewDataset, moved: MultiViewDataset, batch_size: int) -> dict:
    """Test accuracy on the ``clean`` tuples and on the same tuples with every view ``moved`` by a group element
    g = (g_1..g_N); ``agreement``: the share of tuples whose predicted class is unchanged by g; ``invariance_gap``:
    max over tuples and classes of |M(g·x) − M(x)| (an invariant classifier has 1.0 and 0 up to float error)."""
    a, b = test_logits(model, clean.views, batch_size), test_logits(model, moved.views, batch_size)
    pa, pb = a.argmax(-1), b.argmax(-1)
    return {"clean": float(np.mean(pa == clean.labels)), "transformed": float(np.mean(pb == moved.labels)),
            "agreement": float(np.mean(pa == pb)), "invariance_gap": float(np.max(np.abs(a - b)))}


def calibrate_batch_norm(model, views: np.ndarray, prepare, batches: int, batch_size: int, key):
    """``model`` with the population statistics of its BatchNorms (``models/batch_norm.py``): the average over
    ``batches`` random training batches, through the training pipeline ``prepare`` and with dropout, of the batch
    statistics each BatchNorm sees in training. A model without BatchNorm is returned as it is."""
    if not batch_norms(model):
        return model
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    keys = jax.random.split(key, batches)
    draws = [(views[rng.choice(len(views), size=min(batch_size, len(views)), replace=False)], k) for k in keys]
    return population_statistics(model, draws, lambda m, d: _batch_statistics(m, jnp.asarray(d[0]), d[1], prepare))


@eqx.filter_jit
def _batch_statistics(model, views, key, prepare):
    """The training-mode statistics of every BatchNorm of ``model`` on one batch of training views (``model`` is put in
    training mode first: levanter hands back its ``eval_model`` in inference mode)."""
    model = eqx.nn.inference_mode(model, value=False)
    k_prep, k_drop = jax.random.split(key)
    prepared = prepare(views, k_prep)
    keys = jax.random.split(k_drop, prepared[0].shape[0])
    stats = jax.vmap(lambda k, *v: model.norm_statistics(v, key=k), axis_name=BATCH_AXIS)(keys, *prepared)
    return [jax.tree.map(lambda a: a[0], s) for s in stats]


def encoder_calls(model, num_views: int) -> int:
    """Per-view encoder calls per example: N for the plain CNN, Σ|G_i| per encoder net for design 1 (φ and ψ), and
    Π|G_i| passes × N views for product equitune of the plain CNN."""
    if isinstance(model, MultiViewDesign1):
        return model.forward_passes
    return int(getattr(model, "forward_passes", 1)) * num_views


class EpochTestAccuracy:
    """A per-step hook for :func:`fit`: after every ``steps_per_epoch`` updates, the test accuracy (clean and
    transformed) of the current model, BatchNorm statistics recomputed first; ``history`` holds them by epoch."""

    def __init__(self, steps_per_epoch: int, evaluate):
        self.steps_per_epoch, self.evaluate = steps_per_epoch, evaluate
        self.history: list[dict] = []

    def __call__(self, info):
        updates = info.step + 1
        epoch = updates // self.steps_per_epoch
        if updates % self.steps_per_epoch or (self.history and self.history[-1]["epoch"] == epoch):
            return
        row = {"epoch": epoch, **self.evaluate(info.eval_model)}
        self.history.append(row)
        levanter.tracker.log({f"test/{k}": v for k, v in row.items() if k != "epoch"}, step=info.step)

    def best(self) -> dict:
        """The best test accuracy over epochs (the reference's metric), per test set."""
        return {k: max(r[k] for r in self.history) for k in ("clean", "transformed")} if self.history else {}


def main(config: MultiViewConfig) -> dict[str, dict]:
    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    groups = config.view_groups()
    splits = config.load_data()
    trainer = dataclasses.replace(config.trainer, num_train_steps=config.train_steps(len(splits.train.labels)))
    logger.info("multi_view: %d train / %d test tuples of %d views, %d steps", len(splits.train.labels),
                len(splits.test.labels), len(groups), trainer.num_train_steps)
    key = jax.random.PRNGKey(config.trainer.seed)
    results, trained = {}, {}
    mean, std = config.data.mean, config.data.std
    batch = config.trainer.train_batch_size

    def pipeline(name):
        aug_groups = groups if name == "cnn_aug" else config.augment_groups()
        return training_views(config.augment, aug_groups, mean, std)

    def finish(model, prepare, k):
        return calibrate_batch_norm(model, splits.train.views, prepare, config.model.bn_calibration_batches, batch, k)

    def test_accuracies(model):
        return invariance_measures(model, splits.test, splits.test_transformed, config.eval_batch_size)

    def evaluate(name, model, seconds, epochs: EpochTestAccuracy | None = None):
        results[name] = {**test_accuracies(model), "forward_passes": int(getattr(model, "forward_passes", 1)),
                         "encoder_calls": encoder_calls(model, len(groups)), "train_seconds": round(seconds, 1)}
        if epochs is not None:
            results[name]["per_epoch"] = epochs.history
            results[name]["reference_metric"] = epochs.best()
        logger.info("multi_view %s: %s", name, {k: v for k, v in results[name].items() if k != "per_epoch"})

    for name in config.models:
        k_model, k_train, k_norm, key = jax.random.split(key, 4)
        if name == "product_equitune":
            if "cnn" not in trained:
                raise ValueError("models: product_equitune fine-tunes the plain cnn, so list 'cnn' before it")
            wrapped = product_equitune(trained["cnn"], groups)
            evaluate("product_equitune_zero_shot", wrapped, 0.0)
            if config.finetune_steps:
                tuned, seconds = fit(sub_run(trainer, "product_equitune", config.finetune_steps),
                                     config.finetune_optimizer, make_loss(pipeline(name)), wrapped, splits.train,
                                     config.data_seed, k_train)
                evaluate("product_equitune_finetuned", tuned, seconds)
            continue
        model = config.build("design1" if name == "design1" else "cnn", key=k_model)
        prepare = pipeline(name)
        epochs = None
        if config.eval_every_epoch:
            epochs = EpochTestAccuracy(config.steps_per_epoch(len(splits.train.labels)),
                                       lambda m, p=prepare, k=k_norm: test_accuracies(finish(m, p, k)))
        model, seconds = fit(sub_run(trainer, name), config.optimizer, make_loss(prepare), model, splits.train,
                             config.data_seed, k_train, on_step=epochs)
        trained[name] = finish(model, prepare, k_norm)
        evaluate(name, trained[name], seconds, epochs)
    write_run_results(trainer, results)
    return results


if __name__ == "__main__":
    run_main(main)
