"""Language-model corpora as levanter ``LmDataConfig``s: the embedded enwiki106, HF datasets, local jsonl."""

import json
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
      ``hf_id: Salesforce/wikitext, hf_name: wikitext-103-raw-v1`` (needs network the first time). For a
      dataset with a train split only, ``validation_holdout: 0.0005`` holds out that fraction of the train
      documents as validation with ``holdout_seed`` (HF ``train_test_split``; 0.0005 and 2357 are the
      flash-attention/nanoGPT OpenWebText recipe), written once as parquet shards under ``cache_dir``.
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
    validation_holdout: float = 0.0
    holdout_seed: int = 2357

    def __post_init__(self):
        if self.source not in LM_SOURCES:
            raise ValueError(f"data.source must be one of {LM_SOURCES}, got {self.source!r}")
        if self.source == "hf" and not self.hf_id:
            raise ValueError("data.hf_id is required when data.source is 'hf'")
        if self.source == "jsonl" and not self.train_files:
            raise ValueError("data.train_files is required when data.source is 'jsonl'")
        if not 0.0 <= self.validation_holdout < 1.0 or (self.validation_holdout and self.source != "hf"):
            raise ValueError(f"data.validation_holdout must be in [0, 1) and needs data.source 'hf', got "
                             f"{self.validation_holdout} with source {self.source!r}")

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
        elif self.validation_holdout:
            paths = self._write_holdout(os.path.join(cache_root, "text", f"{self.name}_holdout"))
            source = UrlDatasetSourceConfig(train_urls=paths["train"], validation_urls=paths["validation"])
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

    def _write_holdout(self, root: str) -> dict[str, list[str]]:
        """The train split divided into train/validation parquet shards (written once, then reused)."""
        folder = os.path.join(root, f"{self.validation_holdout}_{self.holdout_seed}")
        done = os.path.join(folder, "files.json")
        if not os.path.exists(done):
            import datasets

            full = datasets.load_dataset(self.hf_id, self.hf_name, split="train")
            parts = full.train_test_split(test_size=self.validation_holdout, seed=self.holdout_seed, shuffle=True)
            files: dict[str, list[str]] = {}
            for split, ds in (("train", parts["train"]), ("validation", parts["test"])):
                shards = max(1, len(ds) // 100_000)
                files[split] = [os.path.join(folder, f"{split}-{i:05d}.parquet") for i in range(shards)]
                for i, path in enumerate(files[split]):
                    ds.shard(shards, i, contiguous=True).to_parquet(path)
            with open(done + ".tmp", "w") as f:
                json.dump(files, f)
            os.replace(done + ".tmp", done)
        with open(done) as f:
            return json.load(f)
