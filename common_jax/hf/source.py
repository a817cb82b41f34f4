"""Resolving a checkpoint source string: a local HF folder, a Hugging Face hub id, or a ``timm:`` source.

- ``DIR`` or ``hf:DIR``: a local folder with ``config.json`` and the weights (``model.safetensors``, shards, or
  ``pytorch_model.bin``).
- ``ORG/NAME`` or ``hf:ORG/NAME`` that is not a local folder: a hub id, downloaded with ``huggingface_hub`` into its
  cache (network needed; with ``HF_HUB_OFFLINE=1`` only what is cached).
- ``timm:DIR`` (timm's hub layout) or ``timm:MODEL_NAME`` (timm's registry and hub): see :mod:`.timm_vit`.
"""

from dataclasses import dataclass
from pathlib import Path

from .state_dict import SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_BIN_INDEX

TIMM, HF = "timm:", "hf:"
FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
         "vocab.json", "vocab.txt", "merges.txt"]
WEIGHTS = ([SAFETENSORS, SAFETENSORS_INDEX, "model-*.safetensors"], [TORCH_BIN, TORCH_BIN_INDEX, "pytorch_model-*.bin"])


@dataclass(frozen=True)
class Source:
    kind: str  # "hf" (location: a local folder) or "timm" (location: what follows "timm:")
    location: str
    text: str  # as given, for messages


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec


def _download(repo_id: str) -> Path:
    """The hub snapshot of ``repo_id`` (config, tokenizer files, and safetensors weights, else PyTorch ones)."""
    from huggingface_hub import snapshot_download

    folder = None
    for weights in WEIGHTS:
        folder = Path(snapshot_download(repo_id, allow_patterns=FILES + weights))
        if any((folder / name).is_file() for name in weights[:2]):
            break
    return folder


def hf_folder(spec: str) -> Path:
    """The local folder of an HF source: ``spec`` itself, or the hub snapshot of the id ``spec``."""
    path = Path(spec).expanduser()
    if not path.exists():
        if _looks_like_path(spec):
            raise FileNotFoundError(f"no checkpoint folder at {spec!r}")
        try:
            path = _download(spec)
        except Exception as e:  # offline, unknown repo, gated repo: all end here
            raise FileNotFoundError(f"{spec!r} is not a local folder, and fetching it from the Hugging Face hub "
                                    f"failed ({type(e).__name__}: {e})") from e
    if not path.is_dir():
        raise FileNotFoundError(f"{spec!r} is a file; an HF source is a folder with config.json and the weights")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{spec!r} has no config.json (an HF checkpoint folder holds config.json and "
                                f"{SAFETENSORS} or {TORCH_BIN})")
    return path


def parse_source(source) -> Source:
    """A :class:`Source` of ``source`` (a string or path); an HF source is resolved to a local folder."""
    text = str(source)
    if text.startswith(TIMM):
        return Source("timm", text[len(TIMM):], text)
    return Source("hf", str(hf_folder(text.removeprefix(HF))), text)
