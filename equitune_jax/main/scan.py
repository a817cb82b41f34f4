"""SCAN / SCAN-II / SCAN-mini: pretrain a seq2seq model, then fine-tune equitune (Π|G_i| passes) and
multi-equitune (design 2, Σ|G_i| passes) copies; exact match per test split with joint greedy decoding
(spec §6.2, §9.2, issue "scan").

    python -m equitune_jax.main.scan --config_path configs/equitune/scan.yaml

Returns ``{"accuracy": {model: {split: acc}}, "finetune_seconds": {method: s}, "forward_passes": {...},
"dataset": {...}}`` for models pretrained, <method>_zero_shot and <method>_finetuned.
"""

import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np

from common_jax.launch import run_main
from common_jax.training.run_setup import ensure_json_tracker, write_run_results

from ..config import ScanConfig
from ..data import scan as scan_data
from ..data.scan_dataset import Seq2SeqDataset, Seq2SeqExample
from ..decoding import exact_match, greedy_decode
from ..scan_symmetry import scan_factor, scan_invariant_maps, scan_product
from ..training import example_keys, fit, scalar_loss, sub_run, weighted_mean
from ..wrappers import equitune, multi_equitune

logger = logging.getLogger(__name__)


def make_sequence_nll(normalize: bool):
    """Masked per-token NLL of the target, averaged per example.

    ``normalize=True`` applies log-softmax to raw logits (the pretrained model); ``False`` takes the outputs as
    log-probs already, the equitune wrappers' averaged log-probs (spec §6.2: NLL of the averaged log-probs).
    """

    def loss_fn(model, batch: Seq2SeqExample, *, key=None):
        source, prefix, target = batch.source.array, batch.prefix.array, batch.target.array
        keys = example_keys(key, source.shape[0])
        if keys is None:
            scores = jax.vmap(lambda s, p: model((s, p)))(source, prefix)
        else:
            scores = jax.vmap(lambda s, p, k: model((s, p), key=k))(source, prefix, keys)
        logp = jax.nn.log_softmax(scores, axis=-1) if normalize else scores
        picked = jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
        mask = (target != scan_data.OUT_PAD).astype(jnp.float32)
        count = jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
        nll = -jnp.sum(picked * mask, axis=-1) / count
        token_acc = jnp.sum((jnp.argmax(scores, -1) == target) * mask, -1) / count
        return scalar_loss(nll, batch.weight), {"token_accuracy": weighted_mean(token_acc, batch.weight)}

    return loss_fn


def exact_matches(model, pairs: scan_data.EncodedPairs, batch_size: int) -> np.ndarray:
    """[N] greedy exact-match (joint decoding for wrappers) of every encoded pair, 1.0 or 0.0."""
    model = eqx.nn.inference_mode(model)
    max_target = pairs.target.shape[1]
    run = eqx.filter_jit(lambda m, s, t: exact_match(jax.vmap(lambda x: greedy_decode(m, x, max_target))(s), t))
    return np.concatenate([np.asarray(run(model, pairs.source[i:i + batch_size], pairs.target[i:i + batch_size]))
                           for i in range(0, len(pairs.source), batch_size)])


def build_wrapper(method: str, model, config: ScanConfig):
    factors = tuple(config.groups.factors)
    if method == "equitune":
        return equitune(model, scan_product(factors), aggregate="log_softmax")
    maps = scan_invariant_maps(factors, config.groups.representatives)
    return multi_equitune(model, [scan_factor(f) for f in factors], maps, aggregate="log_softmax")


def _subset(pairs: list, limit: int | None, seed: int) -> list:
    if limit is None or len(pairs) <= limit:
        return pairs
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=limit, replace=False))
    return [pairs[i] for i in keep]


def main(config: ScanConfig) -> dict:
    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    all_pairs = scan_data.generate(config.data.variant)
    split = scan_data.split(all_pairs, config.data.split, config.data.primitive_fraction)
    max_source, max_target = scan_data.max_lengths(all_pairs)
    train = Seq2SeqDataset(scan_data.encode(split.train, max_source, max_target))
    # every test pair is decoded once; each split's accuracy is the mean over its members
    union = sorted({p for pairs in split.tests.values() for p in pairs})
    union = _subset(union, config.data.max_test_examples, config.data_seed)
    position = {p: i for i, p in enumerate(union)}
    members = {name: np.array([position[p] for p in pairs if p in position], int) for name, pairs in split.tests.items()}
    test = scan_data.encode(union, max_source, max_target)
    logger.info("SCAN %s/%s: %d commands, %d train, tests %s", config.data.variant, config.data.split,
                len(all_pairs), len(split.train), {k: len(v) for k, v in split.tests.items()})
    key = jax.random.PRNGKey(config.trainer.seed)
    k_model, k_pre, key = jax.random.split(key, 3)

    def evaluate(model):
        hits = exact_matches(model, test, config.eval_batch_size)
        return {name: float(hits[idx].mean()) if len(idx) else float("nan") for name, idx in members.items()}

    pretrained, pre_seconds = fit(sub_run(config.trainer, "pretrain"), config.optimizer, make_sequence_nll(True),
                                  config.model.build(max_source, max_target, key=k_model), train, config.data_seed,
                                  k_pre)
    accuracy = {"pretrained": evaluate(pretrained)}
    seconds, passes = {"pretrain": round(pre_seconds, 1)}, {"pretrained": 1}
    for method in config.methods:
        wrapped = build_wrapper(method, pretrained, config)
        passes[method] = wrapped.forward_passes
        accuracy[f"{method}_zero_shot"] = evaluate(wrapped)
        if config.finetune_steps:
            key, k_ft = jax.random.split(key)
            tuned, ft_seconds = fit(sub_run(config.trainer, method, config.finetune_steps), config.finetune_optimizer,
                                    make_sequence_nll(False), wrapped, train, config.data_seed, k_ft)
            seconds[method] = round(ft_seconds, 1)
            accuracy[f"{method}_finetuned"] = evaluate(tuned)
        logger.info("SCAN %s: %s", method, {k: v for k, v in accuracy.items() if k.startswith(method)})
    results = {"accuracy": accuracy, "finetune_seconds": {m: seconds[m] for m in config.methods if m in seconds},
               "pretrain_seconds": seconds["pretrain"], "forward_passes": passes,
               "dataset": {"variant": config.data.variant, "split": config.data.split, "commands": len(all_pairs),
                           "train": len(split.train), "tests": {k: len(v) for k, v in split.tests.items()}}}
    write_run_results(config.trainer, results)
    return results


if __name__ == "__main__":
    run_main(main)
