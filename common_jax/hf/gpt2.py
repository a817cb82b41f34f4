"""HF ``GPT2LMHeadModel`` <-> levanter's :class:`~levanter.models.gpt2.Gpt2LMHeadModel`, through levanter's own
HF checkpoint converter (:class:`~levanter.compat.hf_checkpoints.HFCheckpointConverter`), which maps the tensors.

What this module adds: it works offline from a local folder (the converter gets the folder's tokenizer, or the
embedded GPT-2 BPE when the folder has none, instead of reaching for the hub), it refuses the HF config fields
levanter's ``Gpt2Config`` cannot express, and it checks the checkpoint's tensor names and shapes against the ones
levanter reads, so a missing, unexpected or mis-shaped tensor is named before loading. Index buffers
(``attn.bias``, ``attn.masked_bias``) and the tied ``lm_head.weight`` are not weights of their own.
"""

import dataclasses
import re
import tempfile
from pathlib import Path

import equinox as eqx
import haliax as hax
import jax
import numpy as np
import transformers
from haliax.state_dict import flatten_modules_for_export, is_jax_array_like, to_state_dict
from levanter.compat.hf_checkpoints import HFCheckpointConverter, load_tokenizer
from levanter.models.gpt2 import Gpt2Config, Gpt2LMHeadModel
from levanter.utils.activation import ActivationFunctionEnum

from ..data.tokenizers import local_tokenizer
from .errors import UnsupportedConfigError
from .fields import require
from .state_dict import read_shapes
from .tensors import check_tensors

ARCHITECTURES = ("GPT2LMHeadModel", "GPT2Model")  # the same tensors: the LM head is tied to the token embeddings
PREFIX = "transformer."
NOT_WEIGHTS = re.compile(r"(h\.\d+\.attn\.(bias|masked_bias)|lm_head\.weight)$")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")
TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def _tokenizer(source: str | Path | None):
    """An HF tokenizer: the one at ``source`` (a folder or hub id), else the embedded GPT-2 BPE (no network)."""
    if source is not None:
        return load_tokenizer(str(source))
    with tempfile.TemporaryDirectory() as tmp:
        return load_tokenizer(local_tokenizer("gpt2", tmp))


def _converter(tokenizer, reference: Path | None = None, overrides: dict | None = None) -> HFCheckpointConverter:
    return HFCheckpointConverter(Gpt2Config, reference_checkpoint=None if reference is None else str(reference),
                                 HfConfigClass=transformers.GPT2Config, tokenizer=tokenizer,
                                 config_overrides=overrides, ignore_prefix="transformer")


def _one_device():
    """The mesh context levanter's converter needs: one device, a ``data`` axis (the arrays stay unsharded)."""
    return hax.partitioning.set_mesh(jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",)))


def config_from_hf(hf_config) -> Gpt2Config:
    """levanter's ``Gpt2Config`` of an HF ``GPT2Config`` (levanter's own ``from_hf_config``), after refusing what it
    cannot express; the MLP width (``n_inner``) and ``resid_pdrop``, which it does not read, are carried over."""
    names = hf_config.architectures or [ARCHITECTURES[0]]
    if names[0] not in ARCHITECTURES:
        raise UnsupportedConfigError("architectures", names, f"supported GPT-2 architectures are {ARCHITECTURES}")
    if hf_config.activation_function not in set(ActivationFunctionEnum):
        raise UnsupportedConfigError("activation_function", hf_config.activation_function,
                                     f"levanter's GPT-2 supports {tuple(a.value for a in ActivationFunctionEnum)}")
    require("scale_attn_weights", hf_config.scale_attn_weights, True, "levanter's GPT-2 always scales by 1/sqrt(d)")
    require("add_cross_attention", hf_config.add_cross_attention, False, "levanter's GPT-2 has no cross-attention")
    require("tie_word_embeddings", hf_config.tie_word_embeddings, True,
            "levanter's GPT-2 LM head is the token embedding table")
    inner = hf_config.n_inner or 4 * hf_config.n_embd
    if inner % hf_config.n_embd:
        raise UnsupportedConfigError("n_inner", hf_config.n_inner, "levanter's GPT-2 MLP width is a multiple of n_embd")
    return dataclasses.replace(Gpt2Config.from_hf_config(hf_config), mlp_scale=inner // hf_config.n_embd,
                               resid_pdrop=hf_config.resid_pdrop)


def _check_tensors(folder: Path, config: Gpt2Config, vocab_size: int, *, source: str, ignore) -> None:
    """Names and shapes of the checkpoint against the state dict levanter reads (HF's names)."""
    shapes = read_shapes(folder)
    prefix = PREFIX if any(k.startswith(PREFIX) for k in shapes) else ""
    shapes = {k: v for k, v in shapes.items() if not NOT_WEIGHTS.match(k.removeprefix(prefix))}
    abstract = eqx.filter_eval_shape(Gpt2LMHeadModel.init, hax.Axis("vocab", vocab_size), config,
                                     key=jax.random.PRNGKey(0))
    # the state dict levanter's converter reads and writes (its ``to_torch_compatible_state_dict`` without numpy)
    expected = eqx.filter_eval_shape(lambda m: to_state_dict(flatten_modules_for_export(eqx.filter(
        m, is_jax_array_like))), abstract)
    check_tensors(shapes, {prefix + k: tuple(v.shape) for k, v in expected.items()}, source=source, ignore=ignore)


def load(folder: Path, hf_config, *, source: str, ignore=()) -> Gpt2LMHeadModel:
    config = config_from_hf(hf_config)
    _check_tensors(folder, config, hf_config.vocab_size, source=source, ignore=ignore)
    has_tokenizer = any((folder / name).is_file() for name in TOKENIZER_FILES)
    converter = _converter(_tokenizer(folder if has_tokenizer else None), folder)
    with _one_device():
        return converter.load_pretrained(Gpt2LMHeadModel, ref=str(folder), config=config, axis_mapping={})


def hf_overrides(model: Gpt2LMHeadModel, tokenizer) -> dict:
    """HF config entries levanter's ``to_hf_config`` leaves out: the architecture, ``n_inner``, ``resid_pdrop``; and
    the special-token ids levanter copies from the tokenizer, reset to None where they fall outside the model's
    vocabulary (a model trained on a smaller vocabulary than its tokenizer's)."""
    config = model.config
    require("use_bias", config.use_bias, True, "HF's GPT-2 layers always have biases")
    overrides = {"architectures": [ARCHITECTURES[0]], "n_inner": config.hidden_dim * config.mlp_scale,
                 "resid_pdrop": config.resid_pdrop}
    ids = {field: getattr(tokenizer, field, None) for field in TOKEN_IDS}
    outside = {field for field, token in ids.items() if token is not None and token >= model.Vocab.size}
    if outside:
        overrides.update({field: None for field in outside})
        kept = {token for field, token in ids.items() if token is not None and field not in outside}
        overrides["begin_suppress_tokens"] = sorted(kept) or None
        if "bos_token_id" in outside:
            overrides["decoder_start_token_id"] = None
    return overrides


def save(model: Gpt2LMHeadModel, out_dir: Path, tokenizer=None) -> None:
    tok = tokenizer if tokenizer is not None and not isinstance(tokenizer, (str, Path)) else _tokenizer(tokenizer)
    converter = _converter(tok, overrides=hf_overrides(model, tok))
    with _one_device():
        converter.save_pretrained(model, str(out_dir), save_tokenizer=tokenizer is not None, save_reference_code=False)
