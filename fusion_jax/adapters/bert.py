"""The post-LN ``common_jax.models.bert.BertMlm`` for fusion (spec fusion.md §7, §14.1).

Flow graph, with each OT problem's stable name (the keys of ``FusionResult.maps`` / ``costs``) in quotes::

    "word", "position", "token_type": table columns -> T_w, T_p, T_t;  T = (T_w + T_p + T_t) / 3;  emb LN <- S(T)
    per block l:  "layer{l}.q", "layer{l}.k" (or "layer{l}.qk", ``qk_fusion``): T -> (not propagated)
                  "layer{l}.v": T -> T_V;  "layer{l}.o": T_V -> T_O;  T = join(T, T_O);  ln1 <- S(T)
                  "layer{l}.fc1": T -> T_f1;  "layer{l}.fc2": T_f1 -> T_f2;  T = join(T, T_f2);  ln2 <- S(T)
                  (``bert_ln_reference_order``: ln2 <- S(T_f2), the reference's unreleased order)
    MLM head:     "transform": T -> T_tr;  transform LN <- S(T_tr);  the decoder is the (aligned) word table;
                  the vocabulary bias is mixed without alignment.

Taps (tap name = map name; every token of every probe sequence is a sample, no token filter): ``layer{l}.q/k/v``,
``layer{l}.o``, ``layer{l}.fc1`` (pre-GELU), ``layer{l}.fc2``, ``transform`` (dense output, pre-GELU), and for
the weighted residual policies ``layer{l}.resid_in`` / ``layer{l}.resid_mid`` (block input / after the first
join, before ln1).
"""

import equinox as eqx
import haliax as hax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

from common_jax.models.bert import BertMlm

from ..align import Aligner, TensorMover
from ..config import FusionConfig
from ..joins import WEIGHTED_POLICIES
from ..params import TensorSpec
from ..taps import Keep, collect_in_batches
from .encoder_block import QKV, E, block_tensor_specs, check_equal_config, tokens_by_units

INPUT_AXES = ("batch", "position")


def tensor_specs(model: BertMlm) -> dict[str, TensorSpec]:
    """BERT's tensors in canonical ``[units, features]`` layout (tables: ``[embed, rows]``)."""
    layers = lambda m: m.layers.stacked  # noqa: E731
    emb = lambda m: m.embeddings  # noqa: E731
    specs = {
        "embeddings.word": TensorSpec(lambda m: emb(m).word, (E,), ("vocab",)),
        "embeddings.position": TensorSpec(lambda m: emb(m).position, (E,), ("position",)),
        "embeddings.token_type": TensorSpec(lambda m: emb(m).token_type, (E,), ("token_type",)),
        "embeddings.ln.weight": TensorSpec(lambda m: emb(m).ln.weight, (E,)),
        "embeddings.ln.bias": TensorSpec(lambda m: emb(m).ln.bias, (E,)),
        "transform.weight": TensorSpec(lambda m: m.transform.weight, ("embed_out",), (E,)),
        "transform.bias": TensorSpec(lambda m: m.transform.bias, ("embed_out",)),
        "transform_ln.weight": TensorSpec(lambda m: m.transform_ln.weight, (E,)),
        "transform_ln.bias": TensorSpec(lambda m: m.transform_ln.bias, (E,)),
        "decoder_bias": TensorSpec(lambda m: m.decoder_bias, ("vocab",)),
    }
    specs.update(block_tensor_specs("layers", layers))
    return specs


def check_compatible(model: BertMlm, anchor: BertMlm, index: int) -> None:
    check_equal_config(model, anchor, index, ("num_layers", "vocab_size", "max_position", "type_vocab_size"))


def taps_needed(model: BertMlm, config: FusionConfig) -> Keep:
    """The taps ``config`` needs (module docstring), every token kept."""
    acts, weighted = config.cost == "acts", config.resid_policy in WEIGHTED_POLICIES
    keep: Keep = {"transform": None} if acts else {}
    for layer in range(model.config.num_layers):
        p = f"layer{layer}."
        if acts:
            keep.update({p + "q": None, p + "k": None, p + "v": None, p + "fc1": None})
        if acts or weighted:
            keep.update({p + "o": None, p + "fc2": None})
        if weighted:
            keep.update({p + "resid_in": None, p + "resid_mid": None})
    return keep


@eqx.filter_jit
def forward_with_taps(model: BertMlm, input_ids: NamedArray, keep: Keep) -> dict[str, jnp.ndarray]:
    """The taps ``keep`` names (module docstring) of the MLM forward in inference mode, ``[batch, tokens, units]``."""
    model = eqx.nn.inference_mode(model)
    x = model.embeddings(input_ids)
    taps = {}
    for layer, block in enumerate(model.layers.unstacked()):
        p = f"layer{layer}."
        taps[p + "resid_in"] = x
        q, k, v = (getattr(block.attn, proj)(x) for proj in QKV)
        probs = block.attn.weights(x)
        o = block.attn.o_proj(hax.dot(probs, v.rename({"position": "key_position"}), axis="key_position"))
        x = x + o
        taps.update({p + "q": q, p + "k": k, p + "v": v, p + "o": o, p + "resid_mid": x})
        x = block.ln1(x)
        f1 = block.mlp.fc1(x)
        f2 = block.mlp.fc2(block.mlp.activation(f1))
        taps.update({p + "fc1": f1, p + "fc2": f2})
        x = block.ln2(x + f2)
    taps["transform"] = model.transform(x).rename({"embed_out": E})
    return {name: tokens_by_units(taps[name]) for name in keep}


def collect_taps(model: BertMlm, input_ids: np.ndarray, keep: Keep, batch_size: int) -> dict[str, np.ndarray]:
    """:func:`forward_with_taps` over token ids ``[N, seq]``; numpy ``{tap: [N, seq, units]}``."""
    return collect_in_batches(forward_with_taps, model, input_ids, INPUT_AXES, jnp.int32, keep, batch_size)


def is_block_tensor(name: str) -> bool:
    return name.startswith("layers.")


def align(aligner: Aligner, model_a: BertMlm, model_b: BertMlm, pa: dict, pb: dict, taps_a: dict | None,
          taps_b: dict | None) -> dict[str, np.ndarray]:
    """Model A's tensors in the anchor B's basis and shapes, following the graph above."""
    cfg = aligner.config
    move = TensorMover(aligner, pa, pb, taps_a, taps_b)
    out = move.out

    tables = [move.table(t, f"embeddings.{t}") for t in ("word", "position", "token_type")]
    tmap = sum(tables) / len(tables)
    move.layer_norm("embeddings.ln", tmap)

    for layer in range(model_b.config.num_layers):
        t, m = f"layers.{layer}.", f"layer{layer}."
        move.qk(t + "attn", m, tmap)
        tmap_v = move.linear(t + "attn.v_proj", tmap, m + "v")
        tmap_o = move.linear(t + "attn.o_proj", tmap_v, m + "o")
        tmap = move.join(tmap, tmap_o, m + "resid_in", m + "o")
        move.layer_norm(t + "ln1", tmap)
        tmap_f1 = move.linear(t + "mlp.fc1", tmap, m + "fc1")
        tmap_f2 = move.linear(t + "mlp.fc2", tmap_f1, m + "fc2")
        tmap = move.join(tmap, tmap_f2, m + "resid_mid", m + "fc2")
        move.layer_norm(t + "ln2", tmap_f2 if cfg.bert_ln_reference_order else tmap)

    tmap_tr = move.linear("transform", tmap, "transform")
    move.layer_norm("transform_ln", tmap_tr)
    out["decoder_bias"] = pa["decoder_bias"]
    return out
