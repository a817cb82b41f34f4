"""Training data of zoo members: MNIST-style images or AG-News-style texts, as in-memory arrays (nfn.md §5.1).

- ``source: mnist10k`` (embedded, 8k/2k), ``hf`` (e.g. ``ylecun/mnist``) for images; pixels scaled to [-1, 1];
  ``image_size`` < 28 average-pools (after a centre crop to a multiple) for tiny CPU zoos.
- ``source: ag_news`` reads ``name`` (default ``fancyzhx/ag_news``; or a local folder of ``{train,test}.jsonl``
  with ``text``/``label``) through ``common_jax.data.load_text_classification``; ``enwiki_topics`` is data.md's
  offline fallback: paragraphs of the embedded Wikipedia articles, labelled by article. Whitespace tokens,
  vocabulary from the training texts (0 = padding, 1 = unknown), zero padding, frozen embedding table.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

SOURCES = ("mnist10k", "hf", "ag_news", "enwiki_topics")


@dataclass(frozen=True)
class ZooData:
    train_inputs: np.ndarray  # images [N, H, W, C] float32 in [-1, 1] or token ids [N, T] int32
    train_labels: np.ndarray
    test_inputs: np.ndarray
    test_labels: np.ndarray
    table: np.ndarray | None = None  # text: frozen embedding table [vocab, D]


@dataclass(frozen=True)
class ZooDataConfig:
    source: str = "mnist10k"
    name: str | None = None  # HF dataset id or local folder
    image_size: int = 28
    max_train: int | None = None  # keep the first max_train / max_test examples (tiny zoos)
    max_test: int | None = None
    num_topics: int = 4  # enwiki_topics: the articles with most paragraphs become the classes
    vocab_size: int = 20000
    word_vectors: str | None = None  # text: local word2vec text file ("word v1 v2 ..."), PCA'd to D; else seeded random
    table_seed: int = 0

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "hf" and not self.name:
            raise ValueError(f"data.name is required when data.source is {self.source!r}")

    def load(self, max_len: int, embed_dim: int) -> ZooData:
        if self.source in ("mnist10k", "hf"):
            return self._images()
        texts = self._texts()
        return self._tokenised(texts, max_len, embed_dim)

    def _cut(self, x, y, limit):
        return (x, y) if limit is None else (x[:limit], y[:limit])

    def _images(self) -> ZooData:
        if self.source == "mnist10k":
            from common_jax.data import load_mnist10k

            images, labels = load_mnist10k()
            splits = (images[:8000], labels[:8000]), (images[8000:], labels[8000:])
        else:
            import datasets

            def split(name):
                ds = datasets.load_dataset(self.name, split=name)
                return np.stack([np.asarray(im, np.uint8) for im in ds["image"]])[..., None], np.asarray(ds["label"])

            splits = split("train"), split("test")
        (xtr, ytr), (xte, yte) = self._cut(*splits[0], self.max_train), self._cut(*splits[1], self.max_test)
        return ZooData(self._pixels(xtr), ytr.astype(np.int32), self._pixels(xte), yte.astype(np.int32))

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

    def _texts(self) -> tuple[tuple[list[str], list[int]], tuple[list[str], list[int]]]:
        if self.source == "ag_news":
            from common_jax.data import load_text_classification

            tr, te = (load_text_classification(self.name or "fancyzhx/ag_news", s) for s in ("train", "test"))
            return (tr.texts, tr.labels), (te.texts, te.labels)
        return _wiki_topics(self.num_topics)

    def _tokenised(self, splits, max_len: int, embed_dim: int) -> ZooData:
        (tr_texts, tr_labels), (te_texts, te_labels) = splits
        counts = Counter(w for t in tr_texts for w in t.lower().split())
        vocab = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(self.vocab_size - 2))}

        def ids(texts):
            out = np.zeros((len(texts), max_len), np.int32)
            for r, t in enumerate(texts):
                toks = [vocab.get(w, 1) for w in t.lower().split()][:max_len]
                out[r, : len(toks)] = toks
            return out

        xtr, ytr = self._cut(ids(tr_texts), np.asarray(tr_labels, np.int32), self.max_train)
        xte, yte = self._cut(ids(te_texts), np.asarray(te_labels, np.int32), self.max_test)
        return ZooData(xtr, ytr, xte, yte, self._table(vocab, embed_dim))

    def _table(self, vocab: dict[str, int], dim: int) -> np.ndarray:
        """Frozen ``[vocab, D]`` table, row 0 (padding) zero: PCA'd local word vectors, else seeded random normal."""
        table = np.random.default_rng(self.table_seed).normal(0.0, 1.0, (len(vocab) + 2, dim)).astype(np.float32)
        if self.word_vectors:
            vectors = {}
            with open(self.word_vectors, encoding="utf-8") as f:
                for line in f:
                    parts = line.rstrip().split(" ")
                    if len(parts) > dim:
                        vectors[parts[0]] = np.asarray(parts[1:], np.float32)
            mat = np.stack(list(vectors.values()))
            mat = mat - mat.mean(0)
            _, _, vt = np.linalg.svd(mat, full_matrices=False)
            reduced = dict(zip(vectors, mat @ vt[:dim].T))
            for w, i in vocab.items():
                if w in reduced:
                    table[i] = reduced[w]
        table[0] = 0.0
        return table


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
        return [split[0][i] for i in order], [split[1][i] for i in order]

    return shuffled(train), shuffled(test)
