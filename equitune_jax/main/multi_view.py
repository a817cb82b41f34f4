"""N views, one image group per view: CNN, CNN + group augmentation, design 1, and product equitune zero-shot
and fine-tuned; clean and transformed test accuracy. Two-view mnist10k under rot90 × hflip (spec §9.1, issue
"multi_view") and the paper's multi-image classification on Caltech101 / 15Scene (spec §6.1).

    python -m equitune_jax.main.multi_view --config_path configs/equitune/multi_view.yaml
    python -m equitune_jax.main.multi_view --config_path configs/equitune/multi_image_caltech101.yaml

Every model trains on levanter's Trainer (sub-run ids ``<trainer.id>-<model>``). Returns
``{model: {"clean", "transformed", "forward_passes", "train_seconds"}}``.
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
from ..data.multi_view import MultiViewExample
from ..models.view_cnn import product_equitune
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


def augment_views(augment: AugmentConfig, views, key):
    """``augment`` on every view of a batch ``[batch, view, H, W, C]``, independently per image."""
    batch, num_views = views.shape[:2]
    return augment.apply(views.reshape(batch * num_views, *views.shape[2:]), key).reshape(views.shape)


def make_loss(augment_groups=None, augment: AugmentConfig | None = None):
    """Cross-entropy of ``model(views)``; in training (``key`` given) first ``augment`` on every view, then with
    ``augment_groups`` a random group element per view per example."""

    def loss_fn(model, batch: MultiViewExample, *, key=None):
        views = batch.views.array
        if augment is not None and augment.enabled and key is not None:
            key, k_aug = jax.random.split(key)
            views = augment_views(augment, views, k_aug)
        views = _split_views(views)
        if augment_groups is not None and key is not None:
            key, k_aug = jax.random.split(key)
            views = random_group_elements(augment_groups, views, k_aug)
        keys = example_keys(key, views[0].shape[0])
        if keys is None:
            logits = jax.vmap(lambda *v: model(v))(*views)
        else:
            logits = jax.vmap(lambda k, *v: model(v, key=k))(keys, *views)
        labels = batch.label.array
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
        return scalar_loss(nll, batch.weight), {"accuracy": weighted_mean(correct, batch.weight)}

    return loss_fn


def accuracy(model, views: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    """Exact test accuracy of ``model`` (inference mode) over all tuples."""
    model = eqx.nn.inference_mode(model)
    predict = eqx.filter_jit(lambda m, v: jnp.argmax(jax.vmap(lambda *x: m(x))(*_split_views(v)), -1))
    hits = sum(int(jnp.sum(predict(model, views[i:i + batch_size]) == labels[i:i + batch_size]))
               for i in range(0, len(labels), batch_size))
    return hits / len(labels)


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

    def evaluate(name, model, seconds):
        results[name] = {"clean": accuracy(model, splits.test.views, splits.test.labels, config.eval_batch_size),
                         "transformed": accuracy(model, splits.test_transformed.views, splits.test_transformed.labels,
                                                 config.eval_batch_size),
                         "forward_passes": int(getattr(model, "forward_passes", 1)),
                         "train_seconds": round(seconds, 1)}
        logger.info("multi_view %s: %s", name, results[name])

    for name in config.models:
        k_model, k_train, key = jax.random.split(key, 3)
        if name == "product_equitune":
            if "cnn" not in trained:
                raise ValueError("models: product_equitune fine-tunes the plain cnn, so list 'cnn' before it")
            wrapped = product_equitune(trained["cnn"], groups)
            evaluate("product_equitune_zero_shot", wrapped, 0.0)
            if config.finetune_steps:
                tuned, seconds = fit(sub_run(trainer, "product_equitune", config.finetune_steps),
                                     config.finetune_optimizer, make_loss(None, config.augment), wrapped, splits.train,
                                     config.data_seed, k_train)
                evaluate("product_equitune_finetuned", tuned, seconds)
            continue
        model = config.build("design1" if name == "design1" else "cnn", key=k_model)
        loss = make_loss(groups if name == "cnn_aug" else None, config.augment)
        trained[name], seconds = fit(sub_run(trainer, name), config.optimizer, loss, model, splits.train,
                                     config.data_seed, k_train)
        evaluate(name, trained[name], seconds)
    write_run_results(trainer, results)
    return results


if __name__ == "__main__":
    run_main(main)
