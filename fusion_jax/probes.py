"""The probe inputs of the activation cost (spec fusion.md §3.1, ``fusion.acts.sampling``).

The reference (``vit_helper.load_dataset_vit``, ``main.get_dataloader``) splits the training set with HF
``datasets``' ``train_test_split(test_size=0.1, seed=acts.seed)`` and feeds the held-out part (``splits["test"]``)
one item at a time, unshuffled, stopping after ``num_samples`` items: the probes are its first ``num_samples``
items, in that order.
"""

import datasets
import numpy as np

SAMPLINGS = ("reference", "random")
HELD_OUT_FRACTION = 0.1


def probe_indices(num_items: int, num_samples: int, seed: int, sampling: str) -> np.ndarray:
    """Indices ``[min(num_samples, available)]`` into a training set of ``num_items`` items, in feeding order.

    ``reference``: the first ``num_samples`` items of the held-out 10 % of
    ``datasets.Dataset.train_test_split(test_size=0.1, seed=seed)`` (computed by ``datasets`` itself on an index
    column); ``random``: ``num_samples`` items drawn without replacement with ``numpy``'s ``default_rng(seed)``,
    sorted.
    """
    if num_items <= 0:
        raise ValueError(f"the training set to draw probe inputs from is empty ({num_items} items)")
    if sampling == "reference":
        if num_items < 2:
            raise ValueError("fusion.acts.sampling 'reference' splits the training set and needs >= 2 items")
        items = datasets.Dataset.from_dict({"index": np.arange(num_items)})
        held_out = items.train_test_split(test_size=HELD_OUT_FRACTION, seed=seed)["test"]
        return np.asarray(held_out[: min(num_samples, len(held_out))]["index"], np.int64)
    if sampling == "random":
        return np.sort(np.random.default_rng(seed).choice(num_items, min(num_samples, num_items), replace=False))
    raise ValueError(f"fusion.acts.sampling must be one of {SAMPLINGS}, got {sampling!r}")
