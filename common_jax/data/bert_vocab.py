"""The bert-base-uncased WordPiece vocabulary (30,522 entries), embedded (see embedded/PROVENANCE.md, section 7)."""

from pathlib import Path

from .embedded import embedded_path

VOCAB_SIZE = 30522


def bert_vocab_path() -> Path:
    """Path of the embedded ``vocab.txt``."""
    return embedded_path("bert_vocab/vocab.txt")


def bert_tokenizer(lowercase: bool = True):
    """A ``tokenizers`` WordPiece tokenizer over :func:`bert_vocab_path` (bert-base-uncased's normalisation)."""
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(str(bert_vocab_path()), lowercase=lowercase)
