"""Language-model corpora as levanter ``LmDataConfig``s: the embedded enwiki106, HF datasets, local jsonl."""

import os
from dataclasses import dataclass, field

from levanter.data.text import DatasetComponent, HfDatasetSourceConfig, LmDataConfig, UrlDatasetSourceConfig

from . import enwiki106
from .tokenizers import local_tokenizer

LM_SOURCES = ("enwiki106", "hf", "jsonl")


@dataclass(frozen=True)
class LmCorpusConfig:
    """Which text to train on and how to tokenize it.

    - ``source: enwiki106``: the embedded Wikipedia articles (offline default).
    - ``source: hf``: an HF dataset by name or local folder, e.g. ``hf_id: Skylion007/openwebtext`` or
      ``hf_id: Salesforce/wikitext, hf_name: wikitext-103-raw-v1`` (needs network the first time).
    - ``source: jsonl``: local or fsspec ``train_files`` / ``validation_files`` with a ``text`` field.

    ``tokenizer`` is ``gpt2`` (embedded GPT-2 BPE), ``bytes`` (byte level) or any HF tokenizer name/folder.
    """

    source: str = "enwiki106"
    tokenizer: str = "gpt2"
    hf_id: str | None = None
    hf_name: str | None = None
    train_files: list[str] = field(default_factory=list)
    validation_files: list[str] = field(default_factory=list)
    cache_dir: str = "cache"
    shuffle: bool = True

    def __post_init__(self):
        if self.source not in LM_SOURCES:
            raise ValueError(f"data.source must be one of {LM_SOURCES}, got {self.source!r}")
        if self.source == "hf" and not self.hf_id:
            raise ValueError("data.hf_id is required when data.source is 'hf'")
        if self.source == "jsonl" and not self.train_files:
            raise ValueError("data.train_files is required when data.source is 'jsonl'")

    @property
    def name(self) -> str:
        if self.source == "hf":
            return "_".join(p for p in (self.hf_id, self.hf_name) if p).replace("/", "_")
        return self.source

    def lm_data_config(self) -> LmDataConfig:
        """The levanter data config (tokenizer folder written, enwiki106 split files written, if needed)."""
        cache_root = os.path.abspath(self.cache_dir)
        if self.source == "enwiki106":
            paths = enwiki106.write_splits(os.path.join(cache_root, "text", "enwiki106"))
            source = UrlDatasetSourceConfig(train_urls=[paths["train"]], validation_urls=[paths["validation"]])
        elif self.source == "jsonl":
            source = UrlDatasetSourceConfig(
                train_urls=list(self.train_files), validation_urls=list(self.validation_files)
            )
        else:
            source = HfDatasetSourceConfig(id=self.hf_id, name=self.hf_name)
        # The token cache depends on the tokenizer, so it lives under the tokenizer's name.
        token_cache = os.path.join(cache_root, "tokenized", self.tokenizer.replace("/", "_"))
        return LmDataConfig(
            tokenizer=local_tokenizer(self.tokenizer, cache_root),
            cache_dir=token_cache,
            components={self.name: DatasetComponent(source=source)},
            shuffle=self.shuffle,
        )
