"""timm ``VisionTransformer`` -> the project's :class:`~common_jax.models.ViT` (needs ``torch`` and ``timm``).

A state dict alone does not give the head count or the pooling, so a timm source carries its architecture:

- a folder in timm's hub layout (what ``timm.models.save_for_hf`` / ``push_to_hf_hub`` write): ``config.json``
  with ``architecture`` (a timm model name), ``num_classes`` and optional ``model_args``, next to
  ``model.safetensors`` or ``pytorch_model.bin``. timm builds the architecture from its registry
  (``timm.create_model("local-dir:<folder>")``, on the ``meta`` device: no weights are initialised); the weights
  are read and checked here, so a missing, unexpected or mis-shaped tensor is named.
- a timm model name (``vit_small_patch16_224.augreg_in21k_ft_in1k``, ``hf-hub:timm/...``): timm builds it with
  its pretrained weights (``pretrained=True``; network or timm's cache).

The architecture is read off the built module: anything the project ViT cannot express raises
:class:`UnsupportedConfigError` naming the timm argument (``qkv_bias``, ``init_values``, ``reg_tokens``...).
Mapping: fused ``qkv`` splits into Q, K, V (rows ``[q; k; v]``, head-major); the conv patch kernel is transposed
to the project's ``(p1 p2 c)`` patches; ``global_pool='token'`` is CLS pooling (the final ``norm`` is per token, so
normalising all tokens then taking CLS equals the project's LayerNorm of the CLS token), ``'avg'`` with
``fc_norm`` is the project's ``mean_patches`` (or ``mean`` with ``pool_include_prefix``).
"""

from pathlib import Path

import numpy as np

from ..models.vit import ViT, ViTConfig
from .errors import TensorMismatchError, UnsupportedConfigError
from .fields import one_dropout, require, square
from .state_dict import read_state_dict
from .tensors import TensorSpec, build_from_tensors, encoder_block_specs, linear_specs, norm_specs

BLOCK_NAMES = {"ln1": "norm1", "ln2": "norm2", "qkv": "attn.qkv", "o": "attn.proj", "fc1": "mlp.fc1",
               "fc2": "mlp.fc2"}


def _timm():
    try:
        import timm
        import torch
    except ImportError:
        raise ImportError("timm sources need PyTorch and timm: pip install 'transformer-papers-jax[torch]'") from None
    return timm, torch


def _activation(act) -> str:
    from timm.layers.activations import GELU, GELUTanh, QuickGELU
    from torch import nn

    if isinstance(act, nn.GELU):
        return {"none": "gelu", "tanh": "gelu_tanh"}[act.approximate]
    for cls, name in ((GELU, "gelu"), (GELUTanh, "gelu_tanh"), (QuickGELU, "quick_gelu"), (nn.ReLU, "relu")):
        if type(act) is cls:
            return name
    raise UnsupportedConfigError("act_layer", type(act).__name__, "supported: GELU (erf or tanh), QuickGELU, ReLU")


def _layer_norm_eps(field: str, norm) -> float:
    from torch import nn

    if not isinstance(norm, nn.LayerNorm) or not norm.elementwise_affine or norm.bias is None:
        raise UnsupportedConfigError(field, type(norm).__name__, "the project ViT uses affine LayerNorms with bias")
    return norm.eps


def final_norm(model) -> tuple[str, str]:
    """(project pool, name of timm's final LayerNorm: ``norm`` or ``fc_norm``) of timm's pooling and norms."""
    from torch import nn

    has_norm, has_fc_norm = not isinstance(model.norm, nn.Identity), not isinstance(model.fc_norm, nn.Identity)
    if not (has_norm or has_fc_norm):
        raise UnsupportedConfigError("final_norm", False, "the project ViT always ends with a LayerNorm")
    if model.global_pool == "token":
        return "cls", "norm" if has_norm else "fc_norm"
    if model.global_pool == "avg":
        if has_norm:  # LayerNorm of every token, then their mean: not a LayerNorm of the mean
            raise UnsupportedConfigError("fc_norm", False, "with global_pool='avg' the project ViT normalises the "
                                         "pooled features (timm's fc_norm=True)")
        return ("mean" if model.pool_include_prefix else "mean_patches"), "fc_norm"
    raise UnsupportedConfigError("global_pool", model.global_pool, "the project ViT pools by 'token' (CLS) or 'avg'")


def _check_block(block, i: int) -> None:
    from timm.layers import Attention, Mlp
    from timm.models.vision_transformer import Block
    from torch import nn

    checks = [
        ("block_fn", type(block).__name__, type(block) is Block),
        ("attn_layer", type(block.attn).__name__, type(block.attn) is Attention and block.attn.gate is None),
        ("mlp_layer", type(block.mlp).__name__, type(block.mlp) is Mlp),
        ("init_values", "layer scale", isinstance(block.ls1, nn.Identity) and isinstance(block.ls2, nn.Identity)),
        ("qk_norm", True, isinstance(block.attn.q_norm, nn.Identity) and isinstance(block.attn.k_norm, nn.Identity)),
        ("scale_attn_norm", True, isinstance(block.attn.norm, nn.Identity)),
        ("scale_mlp_norm", True, isinstance(block.mlp.norm, nn.Identity)),
        ("qkv_bias", False, block.attn.qkv.bias is not None),
        ("proj_bias", False, all(m.bias is not None for m in (block.attn.proj, block.mlp.fc1, block.mlp.fc2))),
        ("drop_path_rate", "stochastic depth", isinstance(block.drop_path1, nn.Identity)),
    ]
    for field, value, ok in checks:
        if not ok:
            raise UnsupportedConfigError(field, value, f"found in block {i}; the project ViT block is pre-LN "
                                         "attention + MLP with biases, without layer scale, q/k norm or stochastic "
                                         "depth")


def config_from_timm(model) -> ViTConfig:
    """The project :class:`ViTConfig` of a built timm ``VisionTransformer``."""
    from torch import nn

    require("architecture", type(model).__name__, "VisionTransformer", "the project ViT is timm's VisionTransformer")
    embed = model.patch_embed
    require("embed_layer", type(embed).__name__, "PatchEmbed", "the project ViT embeds patches with one linear map")
    patch = square("patch_size", embed.patch_size)
    require("embed_layer", (tuple(embed.proj.kernel_size), tuple(embed.proj.stride), tuple(embed.proj.padding)),
            ((patch, patch), (patch, patch), (0, 0)), "the patch convolution must have kernel = stride = patch")
    require("embed_norm_layer", type(embed.norm).__name__, "Identity", "the project ViT has no patch norm")
    require("dynamic_img_pad", embed.dynamic_img_pad, False, "the project ViT needs images divisible into patches")
    require("pre_norm", not isinstance(model.norm_pre, nn.Identity) or embed.proj.bias is None, False,
            "the project ViT has no norm before its blocks (and a patch bias)")
    require("class_token", model.cls_token is not None, True, "the project ViT has a CLS token")
    require("reg_tokens", model.num_reg_tokens, 0, "the project ViT has no register tokens")
    require("no_embed_class", model.no_embed_class, False, "the project ViT adds position embeddings to CLS too")
    require("pos_embed", "learn" if model.pos_embed is not None else "none", "learn",
            "the project ViT has learned position embeddings")
    require("patch_drop_rate", getattr(model.patch_drop, "prob", 0.0), 0.0, "the project ViT has no patch dropout")
    require("drop_rate", model.head_drop.p, 0.0, "the project ViT has no dropout before the head")
    blocks = list(model.blocks)
    for i, block in enumerate(blocks):
        _check_block(block, i)
    attn, mlp = blocks[0].attn, blocks[0].mlp
    require("attn_head_dim", attn.num_heads * attn.head_dim, model.embed_dim, "head_dim * num_heads must equal width")
    pool, final = final_norm(model)
    eps = {_layer_norm_eps("norm_layer", norm) for norm in [getattr(model, final)]
           + [b.norm1 for b in blocks] + [b.norm2 for b in blocks]}
    require("norm_layer", len(eps), 1, f"the project ViT has one LayerNorm eps, found {sorted(eps)}")
    rates = {"pos_drop_rate": model.pos_drop.p, "attn_drop_rate": attn.attn_drop.p, "proj_drop_rate": attn.proj_drop.p}
    return ViTConfig(
        image_size=square("img_size", embed.img_size), patch_size=patch, num_channels=embed.proj.in_channels,
        num_classes=model.num_classes, hidden_dim=model.embed_dim, num_layers=len(blocks), num_heads=attn.num_heads,
        mlp_dim=mlp.fc1.out_features, dropout=one_dropout(rates), pool=pool, activation=_activation(mlp.act),
        layer_norm_eps=eps.pop(), init_std=0.02,
    )


def tensor_specs(config: ViTConfig, final_norm: str) -> list[TensorSpec]:
    """timm's tensor layout for ``config``; ``final_norm`` is ``"norm"`` or ``"fc_norm"``."""
    d, p, c = config.hidden_dim, config.patch_size, config.num_channels
    specs = [
        TensorSpec("patch_embed.proj.weight", (d, c, p, p), lambda m: m.patch_embed.proj.weight, ("embed", "patch"),
                   permute=(0, 2, 3, 1)),
        TensorSpec("patch_embed.proj.bias", (d,), lambda m: m.patch_embed.proj.bias, ("embed",)),
        TensorSpec("cls_token", (1, 1, d), lambda m: m.cls_token, ("embed",)),
        TensorSpec("pos_embed", (1, config.Pos.size, d), lambda m: m.pos_embed, ("position", "embed")),
    ]
    specs += encoder_block_specs(config, lambda m: m.blocks.stacked,
                                 {k: f"blocks.{{i}}.{v}" for k, v in BLOCK_NAMES.items()}, fused_qkv=True)
    specs += norm_specs(final_norm, lambda m: m.ln_final, d)
    if config.num_classes:
        specs += linear_specs("head", lambda m: m.head, ("classes",), ("embed",), (config.num_classes, d))
    return specs


def _build(spec: str, folder: Path | None):
    """The timm model of ``spec``: the folder's architecture on the meta device, or a named model with weights."""
    timm, torch = _timm()
    if folder is None:
        try:
            return timm.create_model(spec, pretrained=True).eval()
        except Exception as e:  # an unknown name, no network, a gated repo
            raise FileNotFoundError(f"timm:{spec} is not a folder, and timm could not create it with its pretrained "
                                    f"weights ({type(e).__name__}: {e})") from e
    with torch.device("meta"):
        return timm.create_model(f"local-dir:{folder}", pretrained=False).eval()


def load(spec: str, *, ignore=()) -> ViT:
    """The project ViT of a timm source (a hub-layout folder or a model name, see the module docstring)."""
    folder = Path(spec).expanduser()
    folder = folder if folder.is_dir() else None
    if folder is not None and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"timm:{spec}: the folder has no config.json (timm's hub layout: architecture, "
                                "num_classes, model_args); a state dict alone does not give the architecture")
    model = _build(spec, folder)
    config = config_from_timm(model)
    specs = tensor_specs(config, final_norm(model)[1])
    expressed = {name for s in specs for name in s.names(config.num_layers)}
    unexpressed = sorted(set(model.state_dict()) - expressed)
    if unexpressed:
        raise TensorMismatchError(unexpressed, f"timm:{spec}: the timm model has tensors the project ViT does not "
                                  f"express: {unexpressed}")
    if folder is None:
        state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    else:
        state = read_state_dict(folder)
    return build_from_tensors(config, specs, {k: np.asarray(v) for k, v in state.items()}, source=f"timm:{spec}",
                              ignore=ignore)
