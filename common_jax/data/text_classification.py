"""Text classification sets (AG News and the like) from HF ``datasets`` by name or local folder."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TextClassificationSplit:
    texts: list[str]
    labels: list[int]
    num_classes: int


def load_text_classification(
    name: str, split: str, *, subset: str | None = None, text_key: str = "text", label_key: str = "label",
    cache_dir: str | None = None,
) -> TextClassificationSplit:
    """One split of an HF text classification dataset, e.g. ``load_text_classification("fancyzhx/ag_news", "test")``.

    ``name`` may be a local folder of ``{split}.jsonl`` files; ``num_classes`` comes from the ClassLabel feature
    when the dataset has one, else from the largest label.
    """
    import datasets

    ds = datasets.load_dataset(name, subset, split=split, cache_dir=cache_dir)
    missing = {text_key, label_key} - set(ds.column_names)
    if missing:
        raise KeyError(f"dataset {name!r} has no column(s) {sorted(missing)}; columns are {ds.column_names}")
    labels = [int(x) for x in ds[label_key]]
    feature = ds.features[label_key]
    num_classes = feature.num_classes if hasattr(feature, "num_classes") else max(labels) + 1
    return TextClassificationSplit(list(ds[text_key]), labels, num_classes)
