"""The 106 embedded Wikipedia articles as an LM corpus, split by article (96/5/5, about 90/5/5 %).

The split is the one PROVENANCE.md documents: ``numpy.random.RandomState(0).permutation(106)``, first 96
articles train, next 5 validation, last 5 test.
"""

import gzip
import json
import os
from pathlib import Path

import numpy as np

from .embedded import embedded_path

SPLITS = {"train": slice(0, 96), "validation": slice(96, 101), "test": slice(101, 106)}


def load_articles() -> list[dict]:
    """The 106 articles in file order, each ``{"title": str, "text": str}``."""
    with gzip.open(embedded_path("enwiki106.jsonl.gz"), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def split_articles(split: str) -> list[dict]:
    """The articles of one split (``train``, ``validation`` or ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown enwiki106 split {split!r}; expected one of {sorted(SPLITS)}")
    articles = load_articles()
    order = np.random.RandomState(0).permutation(len(articles))
    return [articles[i] for i in order[SPLITS[split]]]


def write_splits(directory: str | os.PathLike) -> dict[str, str]:
    """Write ``{split}.jsonl`` files (one ``{"text": ...}`` per article) and return their absolute paths."""
    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in SPLITS:
        path = directory / f"{split}.jsonl"
        if not path.exists():
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with open(tmp, "w", encoding="utf-8") as f:
                for article in split_articles(split):
                    f.write(json.dumps({"text": article["text"]}, ensure_ascii=False) + "\n")
            os.replace(tmp, path)
        paths[split] = str(path)
    return paths
