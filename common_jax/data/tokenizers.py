"""Local tokenizer folders that levanter's ``load_tokenizer`` reads without network access.

``"gpt2"`` is OpenAI's GPT-2 byte-level BPE rebuilt from the embedded ``encoder.json``/``vocab.bpe`` (byte
identical to the originals, see PROVENANCE.md); ``"bytes"`` is a byte-level tokenizer (ids 0-255 are the bytes,
256 is ``<|endoftext|>``). Any other name is returned unchanged and loaded by levanter from the HF hub or a path.
"""

import json
import os
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from .embedded import embedded_path

EOS = "<|endoftext|>"
EMBEDDED_TOKENIZERS = ("gpt2", "bytes")


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _build(name: str) -> Tokenizer:
    if name == "gpt2":
        folder = embedded_path("gpt2_tokenizer")
        tok = Tokenizer(models.BPE.from_file(str(folder / "encoder.json"), str(folder / "vocab.bpe")))
    else:
        vocab = {char: byte for byte, char in _byte_to_unicode().items()}
        vocab[EOS] = 256
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOS])
    return tok


def local_tokenizer(name: str, cache_dir: str | os.PathLike = "cache") -> str:
    """Return a path or hub name that ``levanter.tokenizers.load_tokenizer`` can load.

    For the embedded names the HF tokenizer folder is written once under ``cache_dir/tokenizers/<name>``.
    """
    if name not in EMBEDDED_TOKENIZERS:
        return name
    folder = Path(cache_dir, "tokenizers", name).absolute()
    if not (folder / "tokenizer.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"tokenizer.json.tmp{os.getpid()}"
        _build(name).save(str(tmp))
        config = {"bos_token": EOS, "eos_token": EOS, "unk_token": EOS, "model_max_length": 1 << 20}
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
        os.replace(tmp, folder / "tokenizer.json")
    return str(folder)
