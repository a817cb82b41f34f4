"""The AG-News zoo path: local jsonl through common_jax.data.load_text_classification, the offline Wikipedia fallback,
and the text zoo member's forward."""

import json

import jax
import numpy as np

from nfn_jax.zoo.data import ZooDataConfig
from nfn_jax.zoo.model import ZooArchitecture, init_params, logits


def test_agnews_from_local_jsonl_and_text_forward(tmp_path):
    texts = {"train": [("stocks fell as markets slid", 2), ("the team won the final match", 1),
                       ("new chip speeds up phones", 3), ("rebels attacked the capital", 0)] * 3,
             "test": [("markets rallied after the team won", 2), ("unknownword only", 0)]}
    for split, rows in texts.items():
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for text, label in rows:
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    data = ZooDataConfig(source="ag_news", name=str(tmp_path)).load(max_len=6, embed_dim=8)
    assert data.train_inputs.shape == (12, 6) and data.test_inputs.shape == (2, 6)
    assert data.table.shape[1] == 8 and np.all(data.table[0] == 0)  # padding row
    assert data.test_inputs[1, 0] == 1 and data.test_inputs[1, 2] == 0  # unknown word, then padding
    arch = ZooArchitecture(task="text", embed_dim=8, num_heads=2, mlp_dim=16, classifier_hidden=8, max_len=6)
    params = init_params(arch, 0.2, jax.random.PRNGKey(0))
    assert "embedding.conv1.weight" not in params  # the frozen table is never stored (nfn.md §5.1)
    out = logits(arch, params, data.train_inputs, data.table)
    assert out.shape == (12, 10) and np.all(np.isfinite(np.asarray(out)))


def test_offline_wikipedia_topics_fallback():
    data = ZooDataConfig(source="enwiki_topics", num_topics=4, max_train=200).load(max_len=32, embed_dim=8)
    assert set(np.unique(data.train_labels)) == {0, 1, 2, 3} and len(data.test_labels) > 20
    assert data.train_inputs.shape == (200, 32) and (data.train_inputs > 1).mean() > 0.5
