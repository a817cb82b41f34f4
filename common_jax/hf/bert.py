"""HF ``BertForMaskedLM`` <-> the project's post-LN :class:`~common_jax.models.bert.BertMlm`.

The layouts agree tensor for tensor. HF ties the MLM decoder to the word embeddings and its bias to
``cls.predictions.bias``; a checkpoint may store those copies (``cls.predictions.decoder.*``), which must then equal
the originals. ``position_ids`` / ``token_type_ids`` are index buffers, not weights. Old checkpoints name LayerNorm
parameters ``gamma`` / ``beta``; they are read as ``weight`` / ``bias``, as ``transformers`` does. HF BERT uses one
``hidden_act`` in the blocks and the MLM head, so a project BERT whose ``activation`` and ``head_activation`` differ
(the project default) cannot be exported.
"""

from pathlib import Path

import numpy as np
import transformers

from ..models.bert import BertConfig, BertMlm
from .errors import TensorMismatchError, UnsupportedConfigError
from .fields import TO_HF_ACTIVATION, activation_from_hf, one_dropout, require
from .state_dict import write_state_dict
from .tensors import TensorSpec, build_from_tensors, encoder_block_specs, export_tensors, linear_specs, norm_specs

ARCHITECTURE = "BertForMaskedLM"
ARCHITECTURES = (ARCHITECTURE, "BertForPreTraining")  # pre-training adds a pooler and the NSP head: ignore=(...)
LAYER = "bert.encoder.layer.{i}."
BLOCK_NAMES = {"ln1": "attention.output.LayerNorm", "ln2": "output.LayerNorm", "q": "attention.self.query",
               "k": "attention.self.key", "v": "attention.self.value", "o": "attention.output.dense",
               "fc1": "intermediate.dense", "fc2": "output.dense"}
BUFFERS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")
TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}


def config_from_hf(hf_config) -> BertConfig:
    """The project :class:`BertConfig` of an HF ``transformers.BertConfig``."""
    names = hf_config.architectures or [ARCHITECTURE]
    if names[0] not in ARCHITECTURES:
        raise UnsupportedConfigError("architectures", names, "the project BERT is the masked-LM model; supported "
                                     f"architectures are {ARCHITECTURES}")
    require("position_embedding_type", hf_config.position_embedding_type, "absolute",
            "the project BERT has absolute position embeddings")
    require("is_decoder", hf_config.is_decoder, False, "the project BERT is a bidirectional encoder")
    require("add_cross_attention", hf_config.add_cross_attention, False, "the project BERT has no cross-attention")
    require("tie_word_embeddings", hf_config.tie_word_embeddings, True,
            "the project BERT's MLM decoder is the word embedding table")
    activation = activation_from_hf("hidden_act", hf_config.hidden_act)
    return BertConfig(
        vocab_size=hf_config.vocab_size, max_position=hf_config.max_position_embeddings,
        type_vocab_size=hf_config.type_vocab_size, hidden_dim=hf_config.hidden_size,
        num_layers=hf_config.num_hidden_layers, num_heads=hf_config.num_attention_heads,
        mlp_dim=hf_config.intermediate_size,
        dropout=one_dropout({"hidden_dropout_prob": hf_config.hidden_dropout_prob,
                             "attention_probs_dropout_prob": hf_config.attention_probs_dropout_prob}),
        activation=activation, head_activation=activation, layer_norm_eps=hf_config.layer_norm_eps,
        init_std=hf_config.initializer_range,
    )


def hf_config_from(config: BertConfig) -> transformers.BertConfig:
    """The HF config of a project :class:`BertConfig` whose block and head activations agree."""
    if config.activation != config.head_activation:
        raise UnsupportedConfigError(
            "model.head_activation", config.head_activation,
            f"HF BERT applies one hidden_act in the blocks and the MLM head, but model.activation is "
            f"{config.activation!r}; train with equal activations (e.g. both 'gelu', HF BERT's) to export")
    return transformers.BertConfig(
        vocab_size=config.vocab_size, max_position_embeddings=config.max_position,
        type_vocab_size=config.type_vocab_size, hidden_size=config.hidden_dim, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, intermediate_size=config.mlp_dim,
        hidden_act=TO_HF_ACTIVATION[config.activation], hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout, layer_norm_eps=config.layer_norm_eps,
        initializer_range=config.init_std, architectures=[ARCHITECTURE],
    )


def tensor_specs(config: BertConfig) -> list[TensorSpec]:
    d, V = config.hidden_dim, config.vocab_size
    emb = "bert.embeddings."
    specs = [
        TensorSpec(f"{emb}word_embeddings.weight", (V, d), lambda m: m.embeddings.word, ("vocab", "embed")),
        TensorSpec(f"{emb}position_embeddings.weight", (config.max_position, d), lambda m: m.embeddings.position,
                   ("position", "embed")),
        TensorSpec(f"{emb}token_type_embeddings.weight", (config.type_vocab_size, d),
                   lambda m: m.embeddings.token_type, ("token_type", "embed")),
    ]
    specs += norm_specs(f"{emb}LayerNorm", lambda m: m.embeddings.ln, d)
    specs += encoder_block_specs(config, lambda m: m.layers.stacked, {k: LAYER + v for k, v in BLOCK_NAMES.items()})
    specs += linear_specs("cls.predictions.transform.dense", lambda m: m.transform, ("embed_out",), ("embed",), (d, d))
    specs += norm_specs("cls.predictions.transform.LayerNorm", lambda m: m.transform_ln, d)
    specs.append(TensorSpec("cls.predictions.bias", (V,), lambda m: m.decoder_bias, ("vocab",)))
    return specs


def _canonical(state_dict: dict, source: str) -> dict:
    """``state_dict`` with LayerNorm ``gamma``/``beta`` renamed, index buffers dropped, and tied copies checked
    against their originals and dropped."""
    renamed = {}
    for name, value in state_dict.items():
        if ".LayerNorm." in name:
            name = name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")
        renamed[name] = value
    for copy, original in TIED.items():
        if copy in renamed and original in renamed:
            if renamed[copy].shape != renamed[original].shape or not np.array_equal(renamed[copy], renamed[original]):
                raise TensorMismatchError([copy], f"{source}: tensor {copy} differs from {original}, but the project "
                                          "BERT ties them (HF's tie_word_embeddings)")
            del renamed[copy]
    return {k: v for k, v in renamed.items() if k not in BUFFERS}


def load(hf_config, state_dict, *, source: str, ignore=()) -> BertMlm:
    config = config_from_hf(hf_config)
    extra = [p for p in ("bert.pooler.", "cls.seq_relationship.") if any(k.startswith(p) for k in state_dict)]
    hint = f" (the project BERT has no pooler or NSP head: ignore={tuple(extra)} drops them)" if extra else ""
    return build_from_tensors(config, tensor_specs(config), _canonical(state_dict, source), source=source,
                              ignore=ignore, hint=hint)


def save(model: BertMlm, out_dir: Path) -> None:
    hf_config = hf_config_from(model.config)
    write_state_dict(export_tensors(model, tensor_specs(model.config), model.config.num_layers), out_dir)
    hf_config.save_pretrained(out_dir)
