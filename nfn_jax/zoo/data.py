"""Training data of zoo members: MNIST-style images or AG-News-style texts, as in-memory arrays (nfn.md §5.1).

Images: ``source: hf`` loads ``name`` through HF ``datasets`` (``ylecun/mnist``: the reference's 60k/10k; a local
folder of ``{train,test}`` files works too); ``mnist10k`` is the embedded offline default (8k/2k). Pixels are scaled
to [-1, 1]; ``image_size`` < 28 average-pools (after a centre crop to a multiple) for tiny CPU zoos.

Texts, as the reference by default: ``source: ag_news`` reads column ``text_key`` (the reference: the description
only) of ``name`` through ``common_jax.data.load_text_classification``; 1-based labels (the Kaggle CSV's
``Class Index``) become 0-based as the reference's ``Class Index - 1``. Whitespace tokens, case kept
(``lowercase``), vocabulary = the words of ``word_vectors`` in file order from 1 (word2vec, PCA'd to D), else the
``vocab_size - 1`` most frequent training words with a seeded random table; unknown words map to 0, the zero
padding row. ``padding: batch`` keeps every token (up to the positional encoding's ``max_len``) and records each
text's length, so the trainer pads each batch to its longest text; ``fixed`` pads/truncates to ``max_len``.
``enwiki_topics`` is data.md's offline fallback: paragraphs of the embedded Wikipedia articles, labelled by article.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .word_vectors import pca_reduce, read_word_vectors

SOURCES = ("mnist10k", "hf", "ag_news", "enwiki_topics")
PADDINGS = ("batch", "fixed")
AG_NEWS = "sh0416/ag_news"  # AG News with separate title / description / label columns


@dataclass(frozen=True)
class ZooData:
    train_inputs: np.ndarray  # images [N, H, W, C] float32 in [-1, 1] or token ids [N, L] int32, zero-padded
    train_labels: np.ndarray
    test_inputs: np.ndarray
    test_labels: np.ndarray
    table: np.ndarray | None = None  # text: frozen embedding table [rows, D], row 0 (padding, unknown words) zero
    train_lengths: np.ndarray | None = None  # text with padding "batch": tokens of each example [N]
    test_lengths: np.ndarray | None = None


@dataclass(frozen=True)
class ZooDataConfig:
    source: str = "mnist10k"
    name: str | None = None  # HF dataset id or local folder
    image_size: int = 28
    max_train: int | None = None  # keep the first max_train / max_test examples (tiny zoos)
    max_test: int | None = None
    num_topics: int = 4  # enwiki_topics: the articles with most paragraphs become the classes
    text_key: str = "description"  # ag_news column; "text" of fancyzhx/ag_news is title + description (the old port)
    label_key: str = "label"  # the Kaggle CSV the reference reads: text_key "Description", label_key "Class Index"
    lowercase: bool = False  # the reference keeps case
    vocab_size: int = 20000  # without word_vectors: padding + the vocab_size - 1 most frequent training words
    word_vectors: str | None = None  # word2vec text/binary file (or gensim KeyedVectors with gensim), PCA'd to D
    padding: str = "batch"  # "batch": each batch padded to its longest text (reference); "fixed": to max_len
    table_seed: int = 0

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "hf" and not self.name:
            raise ValueError(f"data.name is required when data.source is {self.source!r}")
        if self.padding not in PADDINGS:
            raise ValueError(f"data.padding must be one of {PADDINGS}, got {self.padding!r}")
        if self.vocab_size < 2:
            raise ValueError(f"data.vocab_size must be at least 2 (padding + one word), got {self.vocab_size}")

    def load(self, max_len: int, embed_dim: int) -> ZooData:
        if self.source in ("mnist10k", "hf"):
            return self._images()
        return self._tokenised(self._texts(), max_len, embed_dim)

    def _cut(self, x, y, limit):
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def _images(self) -> ZooData:
        if self.source == "mnist10k":
            from common_jax.data import load_mnist10k

            images, labels = load_mnist10k()
            splits = (images[:8000], labels[:8000]), (images[8000:], labels[8000:])
        else:
            splits = self._hf_images("train"), self._hf_images("test")
        (xtr, ytr), (xte, yte) = self._cut(*splits[0], self.max_train), self._cut(*splits[1], self.max_test)
        return ZooData(self._pixels(xtr), ytr.astype(np.int32), self._pixels(xte), yte.astype(np.int32))

    def _hf_images(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        from common_jax.data.images import ImageDataConfig

        try:
            rows = ImageDataConfig(source="hf", name=self.name).hf_split(split)
        except (ConnectionError, OSError) as err:
            raise RuntimeError(f"data.name {self.name!r} could not be loaded ({err}); offline, use the embedded "
                               "--data.source mnist10k") from err
        images, labels = zip(*(rows[i] for i in range(len(rows))))
        return np.stack(images), np.asarray(labels)

    def _pixels(self, images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32) / 127.5 - 1.0
        side = x.shape[1]
        if self.image_size != side:
            factor = side // self.image_size
            if factor < 1:
                raise ValueError(f"data.image_size {self.image_size} is larger than the images ({side})")
            crop = (side - factor * self.image_size) // 2
            x = x[:, crop : crop + factor * self.image_size, crop : crop + factor * self.image_size]
            n, c = x.shape[0], x.shape[-1]
            x = x.reshape(n, self.image_size, factor, self.image_size, factor, c).mean((2, 4))
        return x

    def _texts(self) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
        if self.source == "ag_news":
            from common_jax.data import load_text_classification

            tr, te = (load_text_classification(self.name or AG_NEWS, s, text_key=self.text_key,
                                               label_key=self.label_key) for s in ("train", "test"))
            offset = 1 if min(tr.labels) == 1 else 0  # 1-based class ids (Kaggle's Class Index): the reference's "- 1"
            train, test = (tr.texts, np.asarray(tr.labels) - offset), (te.texts, np.asarray(te.labels) - offset)
        else:
            train, test = _wiki_topics(self.num_topics)
        return self._cut(*train, self.max_train), self._cut(*test, self.max_test)

    def _tokenised(self, splits, max_len: int, embed_dim: int) -> ZooData:
        (tr_texts, tr_labels), (te_texts, te_labels) = splits
        tr_words, te_words = (self._words(t) for t in (tr_texts, te_texts))
        if self.word_vectors:
            words, vectors = read_word_vectors(self.word_vectors)
            vectors = pca_reduce(vectors, embed_dim)
        else:
            counts = Counter(w for ws in tr_words for w in ws)
            words = [w for w, _ in counts.most_common(self.vocab_size - 1)]
            rng = np.random.default_rng(self.table_seed)
            vectors = rng.normal(0.0, 1.0, (len(words), embed_dim)).astype(np.float32)
        vocab: dict[str, int] = {}
        for i, w in enumerate(words):
            vocab.setdefault(w, i + 1)
        tr_ids, te_ids = ([[vocab.get(w, 0) for w in ws][:max_len] for ws in split] for split in (tr_words, te_words))
        # the table keeps only the rows the texts use (ids renumbered in order): the same lookups, a small table
        used = np.unique(np.fromiter((i for split in (tr_ids, te_ids) for ids in split for i in ids), np.int64))
        used = np.union1d(used, [0])
        table = np.zeros((len(used), embed_dim), np.float32)
        table[1:] = vectors[used[1:] - 1]
        longest = max(len(ids) for split in (tr_ids, te_ids) for ids in split)
        width = max_len if self.padding == "fixed" else max(1, longest)

        def pack(split):
            out, lengths = np.zeros((len(split), width), np.int32), np.zeros(len(split), np.int32)
            for r, ids in enumerate(split):
                out[r, : len(ids)] = np.searchsorted(used, ids)
                lengths[r] = len(ids)
            return out, lengths

        (xtr, ltr), (xte, lte) = pack(tr_ids), pack(te_ids)
        if self.padding == "fixed":
            ltr = lte = None
        return ZooData(xtr, tr_labels.astype(np.int32), xte, te_labels.astype(np.int32), table, ltr, lte)

    def _words(self, texts: list[str]) -> list[list[str]]:
        return [(t.lower() if self.lowercase else t).split() for t in texts]


def _wiki_topics(num_topics: int):
    """Paragraphs (>= 20 words) of the ``num_topics`` embedded articles with most of them; every 5th is test; seeded order."""
    from common_jax.data import load_articles

    paragraphs = []
    for article in load_articles():
        paragraphs.append([p for p in article["text"].split("\n") if len(p.split()) >= 20])
    topics = sorted(range(len(paragraphs)), key=lambda i: -len(paragraphs[i]))[:num_topics]
    train, test = ([], []), ([], [])
    for label, a in enumerate(topics):
        for j, p in enumerate(paragraphs[a]):
            split = test if j % 5 == 4 else train
            split[0].append(p)
            split[1].append(label)

    def shuffled(split):  # a fixed interleaving of the topics, as a shuffled dataset would have
        order = np.random.default_rng(0).permutation(len(split[1]))
        return [split[0][i] for i in order], np.asarray([split[1][i] for i in order])

    return shuffled(train), shuffled(test)
