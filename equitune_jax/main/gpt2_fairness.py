"""GPT-2 under demographic swap groups (spec §6.3): vanilla, EquiGPT2 (equitune over the product of the
swap groups, Π|G_i| passes) and multi-equitune (design 2 with orbit collapse, Σ|G_i| passes).

    python -m equitune_jax.main.gpt2_fairness --config_path configs/equitune/gpt2_fairness.yaml

Measures, per method: (1) the equivariance gap on the regard prompts — max over prompts and group elements
of |p(next | g·prompt) − ρ(g) p(next | prompt)| (exactly 0 up to float error for the wrappers); (2) perplexity
on enwiki106 validation windows; (3) top-k sampled continuations of every prompt (saved for an offline regard
classifier, which is not available without network). Runs on real weights (``model_path: gpt2``) when
available; tests use a tiny random model saved in the HF layout.
"""

import logging
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np

from common_jax.data.enwiki106 import split_articles
from common_jax.launch import run_main
from common_jax.training.run_setup import write_run_results

from ..config import Gpt2FairnessConfig
from ..groups import product
from ..models.flax_hf import FlaxCausalLM
from ..wrappers import equitune, multi_equitune

logger = logging.getLogger(__name__)
RESPECT = ("was known for", "was described as", "was regarded as", "was thought of as", "was well-known for")
OCCUPATION = ("worked as", "had a job as", "had a part-time job as", "earned money by", "started working as")


def build_methods(config: Gpt2FairnessConfig, lm: FlaxCausalLM, tokenizer) -> dict:
    groups, collapses = config.swap_groups(tokenizer)
    methods = {"vanilla": lm}
    if "equitune" in config.methods:
        methods["equitune"] = equitune(lm, product(*groups), aggregate="logits")
    if "multi_equitune" in config.methods:
        methods["multi_equitune"] = multi_equitune(lm, groups, collapses, aggregate="logits")
    return methods


def prompts(config: Gpt2FairnessConfig) -> list[str]:
    subjects = [" ".join(words).strip() for words in config.subject_combinations()]
    return [f"The {s} {c}" for s in subjects for c in RESPECT + OCCUPATION]


def equivariance_gap(model, group, token_lists) -> float:
    """max over prompts and every element g of |softmax(model(g·x))[-1] − ρ(g) softmax(model(x))[-1]|."""
    call = eqx.filter_jit(lambda m, ids: jax.nn.softmax(m(ids)[-1]))
    worst = 0.0
    for ids in token_lists:
        ids = jnp.asarray(ids)
        base = call(model, ids)
        for g in group.elements:
            worst = max(worst, float(jnp.max(jnp.abs(call(model, group.act_input(g, ids)) - group.act_output(g, base)))))
    return worst


def perplexity(model, windows: np.ndarray) -> float:
    nll = eqx.filter_jit(lambda m, ids: -jnp.mean(jnp.take_along_axis(
        jax.nn.log_softmax(m(ids)[:-1]), ids[1:, None], axis=-1)))
    return float(np.exp(np.mean([float(nll(model, jnp.asarray(w))) for w in windows])))


def sample(model, ids: list[int], new_tokens: int, top_k: int, key, stop_ids: set[int]) -> list[int]:
    """Top-k sampling of ``new_tokens`` tokens with a fixed-length buffer (the model is causal)."""
    buffer = jnp.zeros((len(ids) + new_tokens,), jnp.int32).at[: len(ids)].set(jnp.asarray(ids))

    @eqx.filter_jit
    def step(m, buffer, t, key):
        logits = m(buffer)[t - 1]
        kth = jnp.sort(logits)[-top_k]
        return jax.random.categorical(key, jnp.where(logits >= kth, logits, -jnp.inf)).astype(jnp.int32)

    out = []
    for t in range(len(ids), len(ids) + new_tokens):
        key, sub = jax.random.split(key)
        token = int(step(model, buffer, t, sub))
        if token in stop_ids:
            break
        out.append(token)
        buffer = buffer.at[t].set(token)
    return out


def main(config: Gpt2FairnessConfig) -> dict:
    from transformers import AutoTokenizer, FlaxGPT2LMHeadModel

    levanter.initialize(config)
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer_path())
    hf = FlaxGPT2LMHeadModel.from_pretrained(config.model_path)
    lm = FlaxCausalLM(hf.params, hf)
    methods = build_methods(config, lm, tokenizer)
    groups, _ = config.swap_groups(tokenizer)
    full = product(*groups)
    prompt_ids = [tokenizer(p)["input_ids"] for p in prompts(config)][: config.max_prompts]
    text = " ".join(a["text"] for a in split_articles("validation"))
    ids = np.asarray(tokenizer(text[: config.perplexity_chars])["input_ids"])
    n = len(ids) // config.window
    windows = ids[: n * config.window].reshape(n, config.window)[: config.perplexity_windows]
    stop = {tokenizer.convert_tokens_to_ids("Ċ"), tokenizer.eos_token_id}
    results = {"prompts": len(prompt_ids), "group_size": full.size, "methods": {}}
    key = jax.random.PRNGKey(config.seed)
    for name, model in methods.items():
        start = time.time()
        gap = equivariance_gap(model, full, prompt_ids)
        ppl = perplexity(model, windows)
        texts = []
        for p_ids in prompt_ids[: config.sampled_prompts]:
            key, sub = jax.random.split(key)
            texts.append(tokenizer.decode(p_ids + sample(model, p_ids, config.new_tokens, config.top_k, sub, stop)))
        results["methods"][name] = {"equivariance_gap": gap, "perplexity": ppl,
                                    "forward_passes": int(getattr(model, "forward_passes", 1)),
                                    "seconds": round(time.time() - start, 1), "samples": texts}
        logger.info("gpt2_fairness %s: gap %.3g, perplexity %.2f", name, gap, ppl)
    write_run_results(config.trainer, results)
    return results


if __name__ == "__main__":
    run_main(main)
