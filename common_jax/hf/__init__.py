"""Hugging Face and timm checkpoints in and out of the project's models.

``load_pretrained(source)`` returns the project model of a checkpoint, its config derived from the checkpoint's:

=========================================  ======================================================================
checkpoint                                 project model
=========================================  ======================================================================
HF ``ViTForImageClassification``           :class:`common_jax.models.ViT` (CLS pooling)
HF ``ViTModel``                            headless :class:`~common_jax.models.ViT` (``num_classes: 0``)
HF ``BertForMaskedLM``                     :class:`common_jax.models.bert.BertMlm`
HF ``GPT2LMHeadModel``                     levanter's ``Gpt2LMHeadModel`` (levanter's HF converter)
timm ``VisionTransformer``                 :class:`~common_jax.models.ViT` (CLS or patch-mean pooling)
=========================================  ======================================================================

Sources (:mod:`.source`): a local HF folder (``DIR`` or ``hf:DIR``), a hub id (``google/vit-base-patch16-224``, needs
network), ``timm:DIR`` (timm's hub layout) or ``timm:MODEL_NAME``. A config field the project model cannot express
raises :class:`UnsupportedConfigError` naming it; a missing, unexpected or mis-shaped tensor raises
:class:`TensorMismatchError` naming it (``ignore=(prefix, ...)`` drops checkpoint tensors on purpose, e.g. an unused
pooler). Models come back ready to train, with the checkpoint's dropout; evaluate them under
``eqx.nn.inference_mode``.

``save_pretrained(model, out_dir)`` writes ``config.json`` + ``model.safetensors`` that ``transformers``'
``from_pretrained`` loads (``AutoModelForImageClassification`` / ``ViTModel``, ``AutoModelForMaskedLM``,
``AutoModelForCausalLM``), for imported models and for models this project trained or fused.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import transformers
from levanter.models.gpt2 import Gpt2LMHeadModel

from ..models.bert import BertMlm
from ..models.vit import ViT
from . import bert, gpt2, timm_vit, vit
from .errors import TensorMismatchError, UnsupportedConfigError
from .source import parse_source
from .state_dict import SAFETENSORS, read_state_dict

__all__ = ["TensorMismatchError", "UnsupportedConfigError", "load_pretrained", "save_pretrained"]

MODEL_TYPES = ("vit", "bert", "gpt2")


def load_pretrained(source: str | os.PathLike, *, ignore: Sequence[str] = ()) -> ViT | BertMlm | Gpt2LMHeadModel:
    """The project model of the checkpoint at ``source`` (see the module docstring for the forms and models).

    ``ignore``: checkpoint tensor-name prefixes to drop on purpose (e.g. ``("bert.pooler.",
    "cls.seq_relationship.")`` for a BERT pre-training checkpoint, ``("pooler.",)`` for a ``ViTModel``).
    """
    src = parse_source(source)
    if src.kind == "timm":
        return timm_vit.load(src.location, ignore=ignore)
    folder = Path(src.location)
    hf_config = transformers.AutoConfig.from_pretrained(folder)
    if hf_config.model_type not in MODEL_TYPES:
        raise UnsupportedConfigError("model_type", hf_config.model_type, f"supported HF model types are {MODEL_TYPES}")
    if hf_config.model_type == "gpt2":
        return gpt2.load(folder, hf_config, source=src.text, ignore=ignore)
    module = vit if hf_config.model_type == "vit" else bert
    return module.load(hf_config, read_state_dict(folder), source=src.text, ignore=ignore)


def save_pretrained(model: ViT | BertMlm | Gpt2LMHeadModel, out_dir: str | os.PathLike, *, tokenizer=None,
                    overwrite: bool = False) -> Path:
    """Write ``model`` (a project :class:`ViT` with CLS pooling, a :class:`BertMlm`, or levanter's
    ``Gpt2LMHeadModel``) to ``out_dir`` in the HF layout and return ``out_dir``.

    ``tokenizer`` (a path, hub id or HF tokenizer) is saved beside the weights; for GPT-2 without one, the config's
    special-token ids come from the embedded GPT-2 BPE. An existing checkpoint in ``out_dir`` is kept unless
    ``overwrite``.
    """
    out_dir = Path(out_dir)
    if not overwrite and ((out_dir / "config.json").exists() or (out_dir / SAFETENSORS).exists()):
        raise FileExistsError(f"{out_dir} already holds a checkpoint; pass overwrite=True to replace it")
    if isinstance(model, Gpt2LMHeadModel):
        gpt2.save(model, out_dir, tokenizer)
        return out_dir
    if isinstance(model, ViT):
        vit.save(model, out_dir)
    elif isinstance(model, BertMlm):
        bert.save(model, out_dir)
    else:
        raise TypeError(f"save_pretrained exports a ViT, BertMlm or levanter Gpt2LMHeadModel, not "
                        f"{type(model).__name__}")
    if tokenizer is not None:
        tok = tokenizer if not isinstance(tokenizer, (str, Path)) else transformers.AutoTokenizer.from_pretrained(
            str(tokenizer))
        tok.save_pretrained(out_dir)
    return out_dir
