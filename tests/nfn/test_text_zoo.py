"""Zoo data as the reference builds it (issue 13 item 8), on tiny local files: HF images, AG-News descriptions with a
word2vec vocabulary (text and binary files), per-batch padding, and the text member against the torch reference."""

import csv
import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from nfn_jax.zoo.data import ZooDataConfig
from nfn_jax.zoo.model import ZooArchitecture, init_params, logits
from nfn_jax.zoo.torch_member import TorchMember
from nfn_jax.zoo.train import ChunkSchedule, ChunkTrainer, RunSpec, _transform, reference_batch_lengths, train_subset
from nfn_jax.zoo.word_vectors import pca_reduce, read_word_vectors

ROWS = {"train": [("Stocks fell as Markets slid", "Wall St. Bears", 3), ("the Team won the final", "Cup final", 2),
                  ("new chip speeds up phones and laptops alike today", "Chip news", 4), ("rebels attacked", "War", 1)],
        "test": [("Markets rallied after the Team won", "Rally", 3), ("unknownword only", "Misc", 1)]}
WORDS = ["the", "Team", "won", "Markets", "Stocks", "fell", "chip", "rebels", "final", "zebra"]


def _word2vec(path, dim: int, binary: bool) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(len(WORDS), dim)).astype(np.float32)
    with open(path, "wb") as f:
        f.write(f"{len(WORDS)} {dim}\n".encode())
        for w, v in zip(WORDS, vectors):
            values = struct.pack(f"<{dim}f", *v) if binary else " ".join(map(repr, v.tolist())).encode()
            f.write(w.encode() + b" " + values + b"\n")
    return vectors


def _agnews_jsonl(folder):
    for split, rows in ROWS.items():
        with open(folder / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps({"label": label, "title": title, "description": description}) + "\n"
                         for description, title, label in rows)


def test_word2vec_text_and_binary_read_alike_and_pca(tmp_path):
    expected = _word2vec(tmp_path / "v.txt", 12, binary=False)
    _word2vec(tmp_path / "v.bin", 12, binary=True)
    for name in ("v.txt", "v.bin"):
        words, vectors = read_word_vectors(tmp_path / name)
        assert words == WORDS
        np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    reduced = pca_reduce(expected, 4)
    centred = expected - expected.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(reduced), np.abs(centred @ vt[:4].T), rtol=1e-4, atol=1e-5)  # PCA up to sign
    np.testing.assert_allclose(reduced.var(0), s[:4] ** 2 / len(WORDS), rtol=1e-4)  # decreasing variances
    with pytest.raises(ValueError, match="embed_dim"):
        pca_reduce(expected, 16)


def test_agnews_descriptions_word2vec_vocabulary_and_batch_padding(tmp_path):
    _agnews_jsonl(tmp_path)
    vectors = _word2vec(tmp_path / "w2v.bin", 8, binary=True)
    data = ZooDataConfig(source="ag_news", name=str(tmp_path), word_vectors=str(tmp_path / "w2v.bin")).load(
        max_len=16, embed_dim=8)
    np.testing.assert_array_equal(data.train_labels, [2, 1, 3, 0])  # 1-based class ids -> 0-based (reference)
    np.testing.assert_array_equal(data.train_lengths, [5, 5, 9, 2])  # descriptions only: titles are not read
    assert data.train_inputs.shape == (4, 9) and data.test_inputs.shape == (2, 9)  # the longest text, per-batch later
    # case kept: "Stocks" and "Markets" are in the vocabulary, "slid"/"as" are not -> the zero padding row
    zero = np.zeros(8)
    np.testing.assert_allclose(data.table[data.train_inputs[0, :5]], [vectors[4], vectors[5], zero, vectors[3], zero])
    np.testing.assert_allclose(data.table[data.test_inputs[1, :2]], 0.0)  # unknown words = padding row, zero
    assert np.all(data.table[0] == 0)

    lower = ZooDataConfig(source="ag_news", name=str(tmp_path), lowercase=True, text_key="title").load(16, 8)
    np.testing.assert_array_equal(lower.train_lengths, [3, 2, 2, 1])
    fixed = ZooDataConfig(source="ag_news", name=str(tmp_path), padding="fixed").load(max_len=4, embed_dim=8)
    assert fixed.train_inputs.shape == (4, 4) and fixed.train_lengths is None  # pad/truncate to max_len


def test_kaggle_csv_the_reference_reads(tmp_path):
    for split, rows in ROWS.items():
        with open(tmp_path / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Class Index", "Title", "Description"])
            writer.writerows([(label, title, description) for description, title, label in rows])
    data = ZooDataConfig(source="ag_news", name=str(tmp_path), text_key="Description",
                         label_key="Class Index").load(16, 8)
    np.testing.assert_array_equal(data.test_labels, [2, 0])
    np.testing.assert_array_equal(data.train_lengths, [5, 5, 9, 2])


def test_hf_images_from_a_local_dataset(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)})
        ds = datasets.Dataset.from_dict({"image": list(images), "label": list(range(n))}, features=features)
        ds.to_parquet(str(tmp_path / f"{split}.parquet"))
        if split == "train":
            first = images[0]
    data = ZooDataConfig(source="hf", name=str(tmp_path)).load(max_len=64, embed_dim=32)
    assert data.train_inputs.shape == (6, 28, 28, 1) and data.test_inputs.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(data.train_inputs[0, ..., 0], first / 127.5 - 1.0, atol=1e-6)  # Normalize(.5, .5)
    np.testing.assert_array_equal(data.train_labels, np.arange(6))


def test_text_member_with_batch_padding_matches_torch(tmp_path):
    """The JAX member on ids stored wider than the batch (masked to each example's batch length) equals the
    reference's torch member on the batch padded to its longest text; evaluation batches pad as the reference's."""
    _agnews_jsonl(tmp_path)
    data = ZooDataConfig(source="ag_news", name=str(tmp_path), vocab_size=12).load(max_len=32, embed_dim=8)
    arch = ZooArchitecture(task="text", embed_dim=8, num_heads=2, mlp_dim=16, classifier_hidden=8, max_len=32)
    params = init_params(arch, 0.5, jax.random.PRNGKey(0))
    member = TorchMember(arch, table=data.table).eval()
    member.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in params.items()})
    ids = data.train_inputs
    run = jax.jit(lambda p, x, lengths: logits(arch, p, x, jnp.asarray(data.table), lengths=lengths))
    for batch in ([0, 1], [1, 3], [0, 1, 2, 3]):
        width = int(data.train_lengths[batch].max())
        with torch.no_grad():
            expected = member(torch.from_numpy(ids[batch, :width]).long()).numpy()
        wide = np.pad(ids[batch], ((0, 0), (0, 16 - ids.shape[1])))  # stored 16 wide, as a compile bucket
        got = run(params, jnp.asarray(wide), jnp.full(len(batch), width))
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(reference_batch_lengths(np.asarray([3, 7, 2, 0, 0]), 2), [7, 7, 2, 2, 1])


def test_text_chunk_step_equals_a_step_at_the_reference_width(tmp_path):
    """A trainer step on a text batch (stored 16 wide, masked to the batch's longest text) equals an optax step on
    the batch cut to that width, the reference's per-batch padding."""
    _agnews_jsonl(tmp_path)
    data = ZooDataConfig(source="ag_news", name=str(tmp_path), vocab_size=12).load(max_len=32, embed_dim=8)
    arch = ZooArchitecture(task="text", embed_dim=8, num_heads=2, mlp_dim=16, classifier_hidden=8, max_len=32)
    schedule = ChunkSchedule(epochs=3, warmup_epochs=1, batch_size=2)
    run = RunSpec("run00000", "adam", 1e-2, 0.3, 1e-4, 0.5, 0.0)
    trainer = ChunkTrainer(arch, "adam", data, schedule, 1, devices=jax.devices()[:1])
    subset = train_subset(4, run.train_fraction, "text", schedule.seed)
    params, opt_state = trainer.init([run], np.zeros(1, int))
    start = jax.tree.map(lambda v: v[0], params)
    [(idx, _)] = list(trainer.epoch_batches(0, subset))
    params, _, _ = trainer.train_epoch(params, opt_state, [run], np.zeros(1, int), 0, subset)

    width = int(data.train_lengths[idx].max())
    x, y = jnp.asarray(data.train_inputs[idx, :width]), jnp.asarray(data.train_labels[idx])
    table = jnp.asarray(data.table)
    loss = lambda p: -jnp.mean(jax.nn.log_softmax(logits(arch, p, x, table))[jnp.arange(2), y])
    optimizer = _transform("adam", float(schedule.epoch_lr(np.asarray(run.lr), 0)), run.weight_decay)
    updates, _ = optimizer.update(jax.grad(loss)(start), optimizer.init(start), start)
    expected = jax.tree.map(lambda p, u: p + u, start, updates)
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(params[name][0]), np.asarray(value), rtol=1e-5, atol=1e-6, err_msg=name)
    assert 0 <= trainer.test_accuracy(params)[0] <= 1


def test_offline_wikipedia_topics_fallback():
    data = ZooDataConfig(source="enwiki_topics", num_topics=4, max_train=200).load(max_len=32, embed_dim=8)
    assert set(np.unique(data.train_labels)) == {0, 1, 2, 3} and len(data.test_labels) > 20
    assert data.train_inputs.shape == (200, 32) and (data.train_inputs > 0).mean() > 0.5
    assert np.all(data.train_lengths <= 32) and data.train_lengths.max() == 32
