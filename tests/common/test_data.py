"""Embedded data sets, local tokenizers, and the online loaders exercised on local files."""

import asyncio
import hashlib
import json

import haliax as hax
import jax
import numpy as np
import pytest
from levanter.schedule import BatchSchedule
from levanter.tokenizers import load_tokenizer

from common_jax.data import (
    EpochShuffledDataset,
    ImageDataConfig,
    LmCorpusConfig,
    load_mnist10k,
    load_text_classification,
    local_tokenizer,
    split_articles,
)


def test_mnist10k_is_the_documented_file():
    images, labels = load_mnist10k()
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.uint8
    # content hashes from PROVENANCE.md
    assert hashlib.sha256(images[..., 0].tobytes()).hexdigest().startswith("8f49a21cf36fe101")
    assert hashlib.sha256(labels.tobytes()).hexdigest().startswith("122809b800f6a8f2")


def test_mnist10k_split_is_8k_2k_with_documented_class_counts():
    splits = ImageDataConfig().load()
    assert asyncio.run(splits.train.async_len()) == 8000 and asyncio.run(splits.test.async_len()) == 2000
    _, labels = load_mnist10k()
    assert np.bincount(labels[8000:]).tolist() == [196, 231, 194, 221, 191, 168, 209, 211, 177, 202]
    example = asyncio.run(splits.test.get_batch([0]))[0]
    assert example.image.axes == (hax.Axis("height", 28), hax.Axis("width", 28), hax.Axis("channel", 1))
    assert int(example.label.array) == labels[8000] and float(example.weight.array) == 1.0


def test_normalisation_uses_mean_and_std():
    raw = asyncio.run(ImageDataConfig().load().train.get_batch([3]))[0].image.array
    normed = asyncio.run(ImageDataConfig(mean=(0.5,), std=(0.25,)).load().train.get_batch([3]))[0].image.array
    np.testing.assert_allclose(normed, (raw - 0.5) / 0.25, rtol=1e-6)


def test_epoch_shuffle_covers_each_epoch_once_and_differs_between_epochs():
    splits = ImageDataConfig().load()
    ds = EpochShuffledDataset(splits.test, seed=7)
    first = [int(e.label.array) for e in asyncio.run(ds.get_batch(range(0, 2000)))]
    second = [int(e.label.array) for e in asyncio.run(ds.get_batch(range(2000, 4000)))]
    labels = load_mnist10k()[1][8000:]
    assert sorted(first) == sorted(second) == sorted(labels.tolist())
    assert first != second
    again = [int(e.label.array) for e in asyncio.run(EpochShuffledDataset(splits.test, 7).get_batch(range(2000, 4000)))]
    assert again == second


def test_enwiki106_split_by_article():
    sizes = {s: len(split_articles(s)) for s in ("train", "validation", "test")}
    assert sizes == {"train": 96, "validation": 5, "test": 5}
    titles = [{a["title"] for a in split_articles(s)} for s in ("train", "validation", "test")]
    assert not (titles[0] & titles[1]) and not (titles[0] & titles[2]) and not (titles[1] & titles[2])
    with pytest.raises(ValueError, match="unknown enwiki106 split"):
        split_articles("dev")


def test_gpt2_tokenizer_is_openai_bpe(in_tmp):
    tok = load_tokenizer(local_tokenizer("gpt2", in_tmp))
    assert tok.encode("hello world") == [31373, 995]
    assert len(tok) == 50257 and tok.eos_token_id == 50256
    text = "Anarchism is a political philosophy — naïve “quotes”."
    assert tok.decode(tok.encode(text)) == text


def test_bytes_tokenizer_ids_are_bytes(in_tmp):
    tok = load_tokenizer(local_tokenizer("bytes", in_tmp))
    text = "Zürich, 1848\n"
    assert tok.encode(text) == list(text.encode("utf-8"))
    assert tok.decode(tok.encode(text)) == text
    assert len(tok) == 257 and tok.eos_token_id == 256


def test_unknown_tokenizer_name_passes_through():
    assert local_tokenizer("meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"


def _first_train_example(corpus: LmCorpusConfig, seq_len: int = 64):
    data = corpus.lm_data_config()
    ds = data.train_set(hax.Axis("position", seq_len), BatchSchedule(4), key=jax.random.PRNGKey(0))
    return data, ds.as_sync_dataset()[0]


def test_enwiki106_lm_pipeline(in_tmp):
    data, example = _first_train_example(LmCorpusConfig(source="enwiki106", tokenizer="bytes"))
    tokens = np.asarray(example.tokens.array)
    assert tokens.shape == (64,) and tokens.max() <= 256
    assert set(data.validation_sets(hax.Axis("position", 64))) == {"enwiki106"}


def test_hf_lm_source_reads_a_local_dataset_folder(in_tmp):
    """The by-name HF path (``datasets.load_dataset(hf_id)``), pointed at a local folder of jsonl files."""
    folder = in_tmp / "local_wikitext"
    folder.mkdir()
    for split, n in (("train", 40), ("validation", 4)):
        with open(folder / f"{split}.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"text": f"{split} document {i}: " + "lorem ipsum dolor sit amet " * 20}) + "\n")
    corpus = LmCorpusConfig(source="hf", hf_id=str(folder), tokenizer="gpt2")
    _, example = _first_train_example(corpus)
    assert np.asarray(example.tokens.array).shape == (64,)


def test_hf_lm_validation_holdout_splits_the_train_documents(in_tmp):
    """``validation_holdout`` for corpora with a train split only (OpenWebText): a seeded, disjoint split of
    the train documents, HF's ``train_test_split`` exactly, that levanter reads as the validation set."""
    datasets = pytest.importorskip("datasets")
    folder = in_tmp / "train_only"
    folder.mkdir()
    texts = [f"document {i}: " + "lorem ipsum dolor sit amet " * 20 for i in range(40)]
    with open(folder / "train.jsonl", "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    corpus = LmCorpusConfig(source="hf", hf_id=str(folder), tokenizer="gpt2", validation_holdout=0.1, holdout_seed=7)
    data, example = _first_train_example(corpus)
    assert np.asarray(example.tokens.array).shape == (64,)
    assert set(data.validation_sets(hax.Axis("position", 64))) == {corpus.name}
    files = json.loads(next((in_tmp / "cache" / "text").rglob("files.json")).read_text())
    read = {s: [r["text"] for p in files[s] for r in datasets.Dataset.from_parquet(p)] for s in files}
    expected = datasets.Dataset.from_dict({"text": texts}).train_test_split(test_size=0.1, seed=7, shuffle=True)
    assert read["validation"] == expected["test"]["text"] and len(read["validation"]) == 4
    assert sorted(read["train"] + read["validation"]) == sorted(texts)
    with pytest.raises(ValueError, match="data.validation_holdout"):
        LmCorpusConfig(source="enwiki106", validation_holdout=0.1)


def test_hf_image_source_reads_a_local_dataset_folder(in_tmp):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=3)})
    arrays = {}
    for split, n in (("train", 6), ("test", 3)):
        pixels = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
        arrays[split] = pixels
        rows = {"image": [Image.fromarray(p) for p in pixels], "label": [i % 3 for i in range(n)]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(in_tmp / f"{split}.parquet"))
    config = ImageDataConfig(source="hf", name=str(in_tmp), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    splits = config.load()
    assert splits.image_shape == (8, 8, 3) and splits.num_classes == 3
    example = asyncio.run(splits.test.get_batch([2]))[0]
    np.testing.assert_allclose(example.image.array, arrays["test"][2] / 255.0, rtol=1e-6)
    assert int(example.label.array) == 2


def test_hf_test_split_is_resized_then_centre_cropped(in_tmp):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=2)})
    pixels = rng.integers(0, 256, size=(2, 12, 20, 3), dtype=np.uint8)  # landscape, H=12, W=20
    for split in ("train", "test"):
        rows = {"image": [Image.fromarray(p) for p in pixels], "label": [0, 1]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(in_tmp / f"{split}.parquet"))
    config = ImageDataConfig(source="hf", name=str(in_tmp), image_size=8, test_resize=10, mean=(0.0,) * 3,
                             std=(1.0,) * 3)
    splits = config.load()
    train, test = (asyncio.run(ds.get_batch([1]))[0].image.array for ds in (splits.train, splits.test))
    squashed = np.asarray(Image.fromarray(pixels[1]).resize((8, 8), Image.BILINEAR)) / 255.0
    np.testing.assert_allclose(train, squashed, rtol=1e-6)
    # shorter side 12 -> 10, so 20 -> int(10 * 20 / 12) = 16; the centre 8 x 8 starts at row 1, column 4
    resized = np.asarray(Image.fromarray(pixels[1]).resize((16, 10), Image.BILINEAR)) / 255.0
    np.testing.assert_allclose(test, resized[1:9, 4:12], rtol=1e-6)
    with pytest.raises(ValueError, match="data.test_resize"):
        ImageDataConfig(source="hf", name="x", image_size=224, test_resize=200)


def test_text_classification_reads_a_local_dataset_folder(in_tmp):
    with open(in_tmp / "test.jsonl", "w") as f:
        for i, text in enumerate(["stocks rally", "team wins final", "new chip released", "elections held"]):
            f.write(json.dumps({"text": text, "label": i}) + "\n")
    split = load_text_classification(str(in_tmp), "test")
    assert split.texts[1] == "team wins final" and split.labels == [0, 1, 2, 3] and split.num_classes == 4
    with pytest.raises(KeyError, match="no column"):
        load_text_classification(str(in_tmp), "test", text_key="description")


def test_tfds_source_is_optional():
    tfds = pytest.importorskip("tensorflow_datasets", reason="the tfds extra is not installed")
    assert hasattr(tfds, "data_source")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(source="imagenet"), "data.source"),
        (dict(source="hf"), "data.name"),
        (dict(mean=(0.1, 0.2), std=(1.0,)), "data.mean"),
    ],
)
def test_image_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageDataConfig(**kwargs)
