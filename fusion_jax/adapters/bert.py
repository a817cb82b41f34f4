"""The post-LN ``common_jax.models.bert.BertMlm`` for fusion (spec fusion.md §7, §14.1).

Flow graph::

    word, position, token-type tables: columns -> T_w, T_p, T_t;  T = (T_w + T_p + T_t) / 3;  emb LN <- S(T)
    per block:  Q, K, V: T -> T_Q, T_K, T_V (``qk_fusion``);  O: T_V -> T_O;  T = join(T, T_O);  ln1 <- S(T)
                fc1: T -> T_f1;  fc2: T_f1 -> T_f2;  T = join(T, T_f2);  ln2 <- S(T)
                (``bert_ln_reference_order``: ln2 <- S(T_f2), the reference's unreleased order)
    MLM head:   transform: T -> T_tr;  transform LN <- S(T_tr);  the decoder is the (aligned) word table;
                the vocabulary bias is mixed without alignment.

Every token of every probe sequence is an activation sample (no token filter).
"""

import equinox as eqx
import haliax as hax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

from common_jax.models.bert import BertMlm

from ..align import Aligner, TensorMover, align_qk
from ..params import TensorSpec
from .encoder_block import QKV, E, block_tensor_specs, check_equal_config, tokens_by_units


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


def is_block_tensor(name: str) -> bool:
    return name.startswith("layers.")


@eqx.filter_jit
def forward_with_taps(model: BertMlm, input_ids: NamedArray) -> tuple[NamedArray, dict[str, jnp.ndarray]]:
    """MLM logits in inference mode plus taps ``[batch, tokens, units]``: per layer ``{l}.resid_in``,
    ``{l}.q/k/v``, ``{l}.o``, ``{l}.resid_mid`` (after the first join, before ln1), ``{l}.fc1`` (pre-GELU),
    ``{l}.fc2``; ``transform`` (dense output, pre-GELU)."""
    model = eqx.nn.inference_mode(model)
    x = model.embeddings(input_ids)
    taps = {}
    for layer, block in enumerate(model.layers.unstacked()):
        taps[f"{layer}.resid_in"] = x
        q, k, v = (getattr(block.attn, p)(x) for p in QKV)
        probs = block.attn.weights(x)
        o = block.attn.o_proj(hax.dot(probs, v.rename({"position": "key_position"}), axis="key_position"))
        x = x + o
        taps.update({f"{layer}.q": q, f"{layer}.k": k, f"{layer}.v": v, f"{layer}.o": o, f"{layer}.resid_mid": x})
        x = block.ln1(x)
        f1 = block.mlp.fc1(x)
        f2 = block.mlp.fc2(block.mlp.activation(f1))
        taps.update({f"{layer}.fc1": f1, f"{layer}.fc2": f2})
        x = block.ln2(x + f2)
    taps["transform"] = model.transform(x).rename({"embed_out": E})
    return model.head(x), {name: tokens_by_units(t) for name, t in taps.items()}


def collect_taps(model: BertMlm, input_ids: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """:func:`forward_with_taps` over token ids ``[N, seq]`` in batches; numpy ``[N, seq, units]``."""
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(input_ids), batch_size):
        chunk = hax.named(jnp.asarray(input_ids[start : start + batch_size], jnp.int32), ("batch", "position"))
        _, taps = forward_with_taps(model, chunk)
        for name, value in taps.items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(values) for name, values in parts.items()}


def align(aligner: Aligner, model_a: BertMlm, model_b: BertMlm, pa: dict, pb: dict, taps_a: dict | None,
          taps_b: dict | None) -> dict[str, np.ndarray]:
    """Model A's tensors in the anchor B's basis and shapes, following the graph above."""
    cfg = aligner.config
    move = TensorMover(aligner, pa, pb, taps_a, taps_b)
    out = move.out

    plans = []
    for t in ("word", "position", "token_type"):
        name = f"embeddings.{t}"
        plan_t = aligner.couple(move.table(pa[name]), move.table(pb[name]))
        out[name] = aligner.rows(pa[name], plan_t)
        plans.append(plan_t)
    plan = sum(plans) / len(plans)
    move.layer_norm("embeddings.ln", plan)

    for layer in range(model_b.config.num_layers):
        n = lambda group: f"layers.{layer}.{group}"  # noqa: E731
        align_qk(aligner, pa, pb, taps_a, taps_b, f"layers.{layer}.attn", f"{layer}.", plan, None, out)
        plan_v = move.linear(n("attn.v_proj"), plan, f"{layer}.v")
        plan_o = move.linear(n("attn.o_proj"), plan_v, f"{layer}.o")
        plan = move.join(plan, plan_o, f"{layer}.resid_in", f"{layer}.o")
        move.layer_norm(n("ln1"), plan)
        plan_f1 = move.linear(n("mlp.fc1"), plan, f"{layer}.fc1")
        plan_f2 = move.linear(n("mlp.fc2"), plan_f1, f"{layer}.fc2")
        ln2_plan = plan_f2
        plan = move.join(plan, plan_f2, f"{layer}.resid_mid", f"{layer}.fc2")
        move.layer_norm(n("ln2"), ln2_plan if cfg.bert_ln_reference_order else plan)

    plan_tr = move.linear("transform", plan, "transform")
    move.layer_norm("transform_ln", plan_tr)
    out["decoder_bias"] = pa["decoder_bias"]
    return out
