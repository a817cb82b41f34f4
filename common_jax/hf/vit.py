"""HF ``ViTForImageClassification`` / ``ViTModel`` <-> the project's :class:`~common_jax.models.ViT`.

The architectures agree: pre-LN blocks with separate Q, K, V, CLS pooling, a final LayerNorm, a Linear head. HF's
patch embedding is a ``Conv2d`` (kernel = stride = patch) with bias; its kernel ``(embed, channel, p1, p2)`` is the
project's Linear over ``(p1 p2 c)``-ordered patches after a transpose, exactly. A ``ViTModel`` becomes a headless
project ViT (``num_classes: 0``) whose call returns HF's ``last_hidden_state[:, 0]``; HF's optional pooler (dense +
tanh) has no project counterpart, so its tensors must be dropped on purpose (``ignore=("pooler.",)``).
``encoder_stride`` serves only the masked-image-modeling decoder, which neither architecture has.
"""

from pathlib import Path

import transformers

from ..models.vit import ViT, ViTConfig
from .errors import UnsupportedConfigError
from .fields import TO_HF_ACTIVATION, activation_from_hf, one_dropout, require, square
from .state_dict import write_state_dict
from .tensors import TensorSpec, build_from_tensors, encoder_block_specs, export_tensors, linear_specs, norm_specs

HAS_HEAD = {"ViTForImageClassification": True, "ViTModel": False}
LAYER = "encoder.layer.{i}."
BLOCK_NAMES = {"ln1": "layernorm_before", "ln2": "layernorm_after", "q": "attention.attention.query",
               "k": "attention.attention.key", "v": "attention.attention.value", "o": "attention.output.dense",
               "fc1": "intermediate.dense", "fc2": "output.dense"}


def architecture(hf_config, state_dict) -> str:
    """The checkpoint's architecture: the config's ``architectures[0]``, else whether it has a classifier."""
    names = hf_config.architectures or ["ViTForImageClassification" if "classifier.weight" in state_dict
                                        else "ViTModel"]
    if names[0] not in HAS_HEAD:
        raise UnsupportedConfigError("architectures", names, f"supported ViT architectures are {tuple(HAS_HEAD)}")
    return names[0]


def config_from_hf(hf_config, arch: str) -> ViTConfig:
    """The project :class:`ViTConfig` of an HF ``transformers.ViTConfig``."""
    require("qkv_bias", hf_config.qkv_bias, True, "the project ViT's Q, K, V projections always have a bias")
    return ViTConfig(
        image_size=square("image_size", hf_config.image_size), patch_size=square("patch_size", hf_config.patch_size),
        num_channels=hf_config.num_channels, num_classes=hf_config.num_labels if HAS_HEAD[arch] else 0,
        hidden_dim=hf_config.hidden_size, num_layers=hf_config.num_hidden_layers,
        num_heads=hf_config.num_attention_heads, mlp_dim=hf_config.intermediate_size,
        dropout=one_dropout({"hidden_dropout_prob": hf_config.hidden_dropout_prob,
                             "attention_probs_dropout_prob": hf_config.attention_probs_dropout_prob}),
        pool="cls", activation=activation_from_hf("hidden_act", hf_config.hidden_act),
        layer_norm_eps=hf_config.layer_norm_eps, init_std=hf_config.initializer_range,
    )


def hf_config_from(config: ViTConfig) -> transformers.ViTConfig:
    """The HF config of a project :class:`ViTConfig`; CLS pooling only (HF's ViT has no mean pooling)."""
    require("model.pool", config.pool, "cls", "HF's ViT classifies the CLS token; mean pooling has no HF equivalent")
    if config.num_classes:
        head = {"architectures": ["ViTForImageClassification"], "num_labels": config.num_classes}
    else:
        head = {"architectures": ["ViTModel"]}
    return transformers.ViTConfig(
        image_size=config.image_size, patch_size=config.patch_size, num_channels=config.num_channels,
        hidden_size=config.hidden_dim, num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        intermediate_size=config.mlp_dim, hidden_act=TO_HF_ACTIVATION[config.activation],
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        layer_norm_eps=config.layer_norm_eps, initializer_range=config.init_std, qkv_bias=True, **head,
    )


def tensor_specs(config: ViTConfig, prefix: str) -> list[TensorSpec]:
    """HF's tensor layout for ``config``; ``prefix`` is ``"vit."`` in a classifier checkpoint, ``""`` in a
    ``ViTModel`` one."""
    d, p, c = config.hidden_dim, config.patch_size, config.num_channels
    emb = f"{prefix}embeddings."
    specs = [
        TensorSpec(f"{emb}patch_embeddings.projection.weight", (d, c, p, p), lambda m: m.patch_embed.proj.weight,
                   ("embed", "patch"), permute=(0, 2, 3, 1)),
        TensorSpec(f"{emb}patch_embeddings.projection.bias", (d,), lambda m: m.patch_embed.proj.bias, ("embed",)),
        TensorSpec(f"{emb}cls_token", (1, 1, d), lambda m: m.cls_token, ("embed",)),
        TensorSpec(f"{emb}position_embeddings", (1, config.Pos.size, d), lambda m: m.pos_embed,
                   ("position", "embed")),
    ]
    names = {k: f"{prefix}{LAYER}{v}" for k, v in BLOCK_NAMES.items()}
    specs += encoder_block_specs(config, lambda m: m.blocks.stacked, names)
    specs += norm_specs(f"{prefix}layernorm", lambda m: m.ln_final, d)
    if config.num_classes:
        specs += linear_specs("classifier", lambda m: m.head, ("classes",), ("embed",), (config.num_classes, d))
    return specs


def load(hf_config, state_dict, *, source: str, ignore=()) -> ViT:
    arch = architecture(hf_config, state_dict)
    config = config_from_hf(hf_config, arch)
    prefix = "vit." if any(k.startswith("vit.") for k in state_dict) else ""
    hint = " (HF's ViTModel pooler has no project counterpart)" if any("pooler." in k for k in state_dict) else ""
    return build_from_tensors(config, tensor_specs(config, prefix), state_dict, source=source, ignore=ignore,
                              hint=hint)


def save(model: ViT, out_dir: Path) -> None:
    config = model.config
    hf_config = hf_config_from(config)
    prefix = "vit." if config.num_classes else ""
    write_state_dict(export_tensors(model, tensor_specs(config, prefix), config.num_layers), out_dir)
    hf_config.save_pretrained(out_dir)
