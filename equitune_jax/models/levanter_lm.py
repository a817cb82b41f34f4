"""A raw-array view of a levanter language model, so the wrappers can permute token ids and vmap it over an orbit.

levanter's models (e.g. ``levanter.models.gpt2.Gpt2LMHeadModel``, what ``common_jax.hf.load_pretrained`` returns for
an HF GPT-2 checkpoint) take named ``position`` ids; the wrappers act on plain arrays.
"""

import equinox as eqx
import haliax as hax
from levanter.layers.attention import AttentionMask


class CausalLM(eqx.Module):
    """``ids int [T] -> logits [T, vocab]`` (causal attention) of a levanter LM head model."""

    model: eqx.Module

    def __call__(self, ids, *, key=None):
        named = hax.named(ids, hax.Axis("position", ids.shape[-1]))
        return self.model(named, AttentionMask.causal(), key=key).array
