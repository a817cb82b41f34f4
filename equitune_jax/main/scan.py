"""SCAN / SCAN-II / SCAN-mini: pretrain a seq2seq model, then fine-tune equitune (Π|G_i| passes) and
multi-equitune (design 2, Σ|G_i| passes) copies; exact match per test split (spec §6.2, §9.2, issue "scan").

    python -m equitune_jax.main.scan --config_path configs/equitune/scan.yaml            # the CPU substitute
    python -m equitune_jax.main.scan --config_path configs/equitune/scan_reference.yaml  # the reference protocol

Each stage (``pretrain``, ``finetune``) trains on levanter's Trainer with its teacher-forcing ratio and token loss and,
with a validation fraction, keeps the model of best validation exact match (``training.KeepBest``). Test decoding
follows ``decode_mode`` (``decoding.py``). Returns ``{"accuracy": {model: {split: acc}}, "finetune_seconds": {method:
s}, "forward_passes": {...}, "validation": {...}, "dataset": {...}}`` for models pretrained, <method>_zero_shot and
<method>_finetuned.
"""

import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np

from common_jax.launch import run_main
from common_jax.training.run_setup import ensure_json_tracker, write_run_results

from ..config import ScanConfig, ScanStageConfig
from ..data import scan as scan_data
from ..data.scan_dataset import Seq2SeqDataset, Seq2SeqExample
from ..decoding import exact_match, free_running, is_wrapper, predict
from ..scan_symmetry import scan_factor, scan_invariant_maps, scan_product
from ..training import KeepBest, example_keys, fit, scalar_loss, sub_run, weighted_mean
from ..wrappers import equitune, multi_equitune

logger = logging.getLogger(__name__)


def _first_eos_mask(logp):
    """[..., T] True up to and including the first position whose argmax is <eos> (all True if there is none)."""
    eos = jnp.argmax(logp, axis=-1) == scan_data.OUT_EOS
    first = jnp.where(jnp.any(eos, axis=-1), jnp.argmax(eos, axis=-1), logp.shape[-2])
    return jnp.arange(logp.shape[-2]) <= first[..., None]


def make_sequence_nll(normalize: bool, stage: ScanStageConfig, eos_loss_cut: bool = False):
    """Masked per-token NLL of the target per example (``stage.token_loss``: mean or sum over its tokens).

    ``normalize=True`` applies log-softmax to the raw logits of a teacher-forced plain model; ``False`` takes a
    wrapper's averaged log-probs as they are (spec §6.2: NLL of the averaged log-probs). In training (``key`` given)
    a batch is teacher-forced with probability ``stage.teacher_forcing_ratio``, else every branch decodes free-running
    (:func:`decoding.free_running`, whose outputs are log-probs already). ``eos_loss_cut``: only positions up to the
    first argmax <eos> of the model's own output count (the reference's loop ``break``).
    """
    ratio = stage.teacher_forcing_ratio

    def loss_fn(model, batch: Seq2SeqExample, *, key=None):
        source, prefix, target = batch.source.array, batch.prefix.array, batch.target.array
        k_choice, k_model = (None, None) if key is None else jax.random.split(key)
        keys = example_keys(k_model, source.shape[0])

        def teacher_forced():
            if keys is None:
                scores = jax.vmap(lambda s, p: model((s, p)))(source, prefix)
            else:
                scores = jax.vmap(lambda s, p, k: model((s, p), key=k))(source, prefix, keys)
            return jax.nn.log_softmax(scores, axis=-1) if normalize else scores

        def own_predictions():
            decoder = free_running(model, target.shape[-1])
            return jax.vmap(lambda s, k: decoder(s, key=k))(source, keys)

        if key is None or ratio >= 1:
            logp = teacher_forced()
        elif ratio <= 0:
            logp = own_predictions()
        else:
            logp = jax.lax.cond(jax.random.uniform(k_choice) < ratio, teacher_forced, own_predictions)
        picked = jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
        mask = target != scan_data.OUT_PAD
        if eos_loss_cut:
            mask = mask & _first_eos_mask(logp)
        mask = mask.astype(jnp.float32)
        count = jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
        nll = -jnp.sum(picked * mask, axis=-1)
        per_example = nll if stage.token_loss == "sum" else nll / count
        token_acc = jnp.sum((jnp.argmax(logp, -1) == target) * mask, -1) / count
        return scalar_loss(per_example, batch.weight), {"token_accuracy": weighted_mean(token_acc, batch.weight)}

    return loss_fn


def exact_matches(model, pairs: scan_data.EncodedPairs, batch_size: int, decode_mode: str = "joint") -> np.ndarray:
    """[N] greedy exact match of every encoded pair, 1.0 or 0.0. A plain model decodes free-running (its greedy
    decode); a wrapper decodes by ``decode_mode``."""
    model = eqx.nn.inference_mode(model)
    max_target = pairs.target.shape[1]
    mode = decode_mode if is_wrapper(model) else "independent"
    run = eqx.filter_jit(lambda m, s, t: exact_match(jax.vmap(lambda x: predict(m, x, max_target, mode))(s), t))
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


def validation_split(pairs: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): a seeded shuffle of ``pairs``, the first ``int(fraction · N)`` held out (the reference's
    ``random.shuffle(train_pairs)`` then ``train_pairs[:val_size]``); with ``fraction`` 0 the pairs as they are."""
    if fraction <= 0:
        return list(pairs), []
    order = np.random.default_rng(seed).permutation(len(pairs))
    size = int(len(pairs) * fraction)
    return [pairs[i] for i in order[size:]], [pairs[i] for i in order[:size]]


def test_set(config: ScanConfig, split: scan_data.ScanSplit):
    """The pairs to decode once (the union of the test lists, or a seeded subset) and each split's member indices
    into them (repeated where a list holds a pair twice, as the reference's concatenated ``all``)."""
    union = sorted({p for pairs in split.tests.values() for p in pairs})
    union = _subset(union, config.data.max_test_examples, config.data_seed)
    position = {p: i for i, p in enumerate(union)}
    members = {name: np.array([position[p] for p in pairs if p in position], int)
               for name, pairs in split.tests.items()}
    return union, members


def train_stage(trainer_config, optimizer, stage: ScanStageConfig, loss_fn, model, pairs: list, lengths, seed: int,
                split_seed: int, key, decode_mode: str, eval_batch_size: int):
    """Train one stage (data order ``seed``, validation split ``split_seed``); returns (kept model, seconds,
    validation summary or None)."""
    train_pairs, val_pairs = validation_split(pairs, stage.validation_fraction, split_seed)
    train = Seq2SeqDataset(scan_data.encode(train_pairs, *lengths))
    keep = None
    if val_pairs:
        val = scan_data.encode(val_pairs, *lengths)
        keep = KeepBest(lambda m: float(exact_matches(m, val, eval_batch_size, decode_mode).mean()),
                        stage.validation_first_step, stage.validation_every)
    trained, seconds = fit(trainer_config, optimizer, loss_fn, model, train, seed, key, on_step=keep)
    if keep is None:
        return trained, seconds, None
    summary = {**keep.summary(), "examples": len(val_pairs), "kept": "best" if keep.best_model is not None else "final"}
    return (keep.best_model if keep.best_model is not None else trained), seconds, summary


def main(config: ScanConfig) -> dict:
    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    all_pairs = scan_data.generate(config.data.variant)
    split = scan_data.split(all_pairs, config.data.split, config.data.primitive_fraction,
                            reference=config.reference_compat.scan_split)
    lengths = scan_data.max_lengths(all_pairs)
    union, members = test_set(config, split)
    test = scan_data.encode(union, *lengths)
    logger.info("SCAN %s/%s: %d commands, %d train, tests %s", config.data.variant, config.data.split,
                len(all_pairs), len(split.train), {k: len(v) for k, v in split.tests.items()})
    key = jax.random.PRNGKey(config.trainer.seed)
    k_model, k_pre, key = jax.random.split(key, 3)
    cut = config.reference_compat.eos_loss_cut

    def evaluate(model):
        hits = exact_matches(model, test, config.eval_batch_size, config.decode_mode)
        return {name: float(hits[idx].mean()) if len(idx) else float("nan") for name, idx in members.items()}

    pretrained, pre_seconds, pre_val = train_stage(
        sub_run(config.trainer, "pretrain"), config.optimizer, config.pretrain,
        make_sequence_nll(True, config.pretrain, cut), config.model.build(*lengths, key=k_model), split.train, lengths,
        config.data_seed, config.data_seed, k_pre, config.decode_mode, config.eval_batch_size)
    accuracy = {"pretrained": evaluate(pretrained)}
    seconds, passes, validation = {"pretrain": round(pre_seconds, 1)}, {"pretrained": 1}, {"pretrain": pre_val}
    for method in config.methods:
        wrapped = build_wrapper(method, pretrained, config)
        passes[method] = wrapped.forward_passes
        accuracy[f"{method}_zero_shot"] = evaluate(wrapped)
        if config.finetune_steps:
            key, k_ft = jax.random.split(key)
            tuned, ft_seconds, validation[method] = train_stage(
                sub_run(config.trainer, method, config.finetune_steps), config.finetune_optimizer, config.finetune,
                make_sequence_nll(False, config.finetune, cut), wrapped, split.train, lengths, config.data_seed,
                config.data_seed + 1, k_ft, config.decode_mode, config.eval_batch_size)
            seconds[method] = round(ft_seconds, 1)
            accuracy[f"{method}_finetuned"] = evaluate(tuned)
        logger.info("SCAN %s: %s", method, {k: v for k, v in accuracy.items() if k.startswith(method)})
    results = {"accuracy": accuracy, "finetune_seconds": {m: seconds[m] for m in config.methods if m in seconds},
               "pretrain_seconds": seconds["pretrain"], "forward_passes": passes, "validation": validation,
               "decode_mode": config.decode_mode, "seed": config.trainer.seed,
               "dataset": {"variant": config.data.variant, "split": config.data.split, "commands": len(all_pairs),
                           "train": len(split.train), "tests": {k: len(v) for k, v in split.tests.items()},
                           "decoded": len(union)}}
    write_run_results(config.trainer, results)
    return results


if __name__ == "__main__":
    run_main(main)
