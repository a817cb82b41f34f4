"""Word vectors for the AG-News zoo's frozen embedding: read a word2vec file, reduce it by PCA (nfn.md §5.1).

The reference embeds words with GoogleNews word2vec (300-d) reduced to 32-d by PCA over the whole vocabulary,
indexes the vocabulary in file order from 1 (0 = padding, a zero row) and maps unknown words to 0 too.

Formats read here without gensim (detected from the file, not its name):
- word2vec text: an optional ``"<count> <dim>"`` header line, then ``word v1 ... v_dim`` per line;
- word2vec binary: the header line, then per word its UTF-8 bytes, a space and ``dim`` little-endian float32;
- a gensim ``KeyedVectors.save`` file (a pickle) when gensim is installed.
"""

import pickle
from pathlib import Path

import numpy as np


def read_word_vectors(path) -> tuple[list[str], np.ndarray]:
    """Words (file order) and their vectors ``[count, dim]`` float32 from a word2vec text/binary or gensim file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.word_vectors: no file {path}")
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head[:1] == pickle.PROTO:
            return _gensim(path)
        first = f.readline()
        header = first.split()
        if len(header) == 2 and all(t.isdigit() for t in header):
            count, dim = int(header[0]), int(header[1])
            start = f.tell()
            if _looks_like_text(f.readline(), dim):
                f.seek(start)
                return _text(f, dim, count)
            f.seek(start)
            return _binary(f, count, dim)
        f.seek(0)
        return _text(f, len(header) - 1, None)


def _looks_like_text(line: bytes, dim: int) -> bool:
    parts = line.split()
    if len(parts) != dim + 1:
        return False
    try:
        [float(p) for p in parts[1:]]
        parts[0].decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _text(f, dim: int, count: int | None) -> tuple[list[str], np.ndarray]:
    words, rows = [], []
    for number, line in enumerate(f, 1):
        parts = line.rstrip(b"\r\n").split(b" ")
        if not parts or parts == [b""]:
            continue
        if len(parts) != dim + 1:
            raise ValueError(f"data.word_vectors: line {number} has {len(parts) - 1} values, expected {dim}")
        words.append(parts[0].decode("utf-8"))
        rows.append(np.asarray(parts[1:], np.float32))
    if count is not None and len(words) != count:
        raise ValueError(f"data.word_vectors: header says {count} words, the file has {len(words)}")
    return words, np.stack(rows) if rows else np.zeros((0, dim), np.float32)


def _binary(f, count: int, dim: int) -> tuple[list[str], np.ndarray]:
    words, vectors = [], np.empty((count, dim), np.float32)
    for i in range(count):
        word = bytearray()
        while (ch := f.read(1)) != b" ":
            if not ch:
                raise ValueError(f"data.word_vectors: binary file ends inside word {i} of {count}")
            if ch != b"\n":
                word += ch
        raw = f.read(4 * dim)
        if len(raw) != 4 * dim:
            raise ValueError(f"data.word_vectors: binary file ends inside the vector of word {i} of {count}")
        words.append(word.decode("utf-8"))
        vectors[i] = np.frombuffer(raw, "<f4")
    return words, vectors


def _gensim(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        from gensim.models import KeyedVectors
    except ImportError as err:
        raise ImportError(f"data.word_vectors: {path} is a pickle (gensim KeyedVectors); install gensim to read it, "
                          "or save it with KeyedVectors.save_word2vec_format") from err
    kv = KeyedVectors.load(str(path))
    return list(kv.index_to_key), np.asarray(kv.vectors, np.float32)


def pca_reduce(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Project ``[count, d]`` onto its ``dim`` principal components (over all rows, centred), as the reference's
    ``PCA(n_components=dim)``; each component's sign is fixed so its largest-magnitude loading is positive."""
    if vectors.shape[1] < dim:
        raise ValueError(f"data.word_vectors has {vectors.shape[1]}-d vectors, fewer than architecture.embed_dim {dim}")
    if vectors.shape[1] == dim:
        return vectors.astype(np.float32)
    mean = vectors.mean(0, dtype=np.float64)
    centred = vectors - mean.astype(np.float32)
    covariance = centred.T.astype(np.float64) @ centred.astype(np.float64)
    values, vecs = np.linalg.eigh(covariance)
    components = vecs[:, np.argsort(values)[::-1][:dim]]
    components *= np.sign(components[np.abs(components).argmax(0), np.arange(dim)])
    return (centred @ components.astype(np.float32)).astype(np.float32)
