"""Data sources shared by the paper packages: embedded offline sets and their online equivalents."""

from .embedded import embedded_path
from .enwiki106 import load_articles, split_articles
from .images import (
    ArrayImages,
    EpochShuffledDataset,
    ImageClassificationDataset,
    ImageDataConfig,
    ImageExample,
    ImageSplits,
    load_mnist10k,
)
from .lm import LmCorpusConfig
from .text_classification import load_text_classification
from .tokenizers import local_tokenizer

__all__ = [
    "ArrayImages",
    "EpochShuffledDataset",
    "ImageClassificationDataset",
    "ImageDataConfig",
    "ImageExample",
    "ImageSplits",
    "LmCorpusConfig",
    "embedded_path",
    "load_articles",
    "load_mnist10k",
    "load_text_classification",
    "local_tokenizer",
    "split_articles",
]
