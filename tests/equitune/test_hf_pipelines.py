"""GPT-2 (levanter's Equinox GPT-2 through common_jax.hf) and CLIP (transformers' Flax CLIP) pipelines offline, on
tiny random models saved in the HF layout; the regard metric on a tiny random BERT classifier."""

import json

import numpy as np
import pytest

from common_jax.launch import parse_config
from equitune_jax.config import Gpt2FairnessConfig

from .test_configs import CONFIGS

REGARD_LABELS = {0: "negative", 1: "neutral", 2: "positive", 3: "other"}


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50257, n_positions=64, n_embd=16, n_layer=1, n_head=2,
                        initializer_range=0.5)  # far from uniform, so a non-equivariant model shows
    folder = tmp_path_factory.mktemp("gpt2") / "gpt2_tiny"
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_regard(tmp_path_factory):
    """A random BertForSequenceClassification with the regard labels and a character-level WordPiece vocabulary."""
    import string

    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = tmp_path_factory.mktemp("regard") / "regard_tiny"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *string.digits, *".,'-",
             *(f"##{c}" for c in string.ascii_lowercase)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, num_labels=4, id2label=REGARD_LABELS,
                        label2id={v: k for k, v in REGARD_LABELS.items()})
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_levanter_gpt2_view_matches_torch(tiny_gpt2):
    import equinox as eqx
    import jax.numpy as jnp
    import torch
    from transformers import GPT2LMHeadModel

    from common_jax.hf import load_pretrained
    from equitune_jax.models.levanter_lm import CausalLM

    ids = np.array([464, 582, 373, 1900, 329, 257])
    ours = eqx.nn.inference_mode(CausalLM(load_pretrained(tiny_gpt2)))(jnp.asarray(ids))
    with torch.no_grad():
        theirs = GPT2LMHeadModel.from_pretrained(tiny_gpt2)(torch.tensor(ids[None])).logits[0].numpy()
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4)


def test_three_factor_product_needs_more_passes_than_multi_equitune(tiny_gpt2):
    from transformers import AutoTokenizer

    from common_jax.hf import load_pretrained
    from equitune_jax.main.gpt2_fairness import build_methods, prompts
    from equitune_jax.models.levanter_lm import CausalLM

    config = parse_config(Gpt2FairnessConfig, CONFIGS / "equitune" / "gpt2_fairness.yaml")
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer_path())
    methods = build_methods(config, CausalLM(load_pretrained(tiny_gpt2)), tokenizer)
    passes = {name: getattr(m, "forward_passes", 1) for name, m in methods.items()}
    assert passes == {"vanilla": 1, "equitune": 8, "multi_equitune": 6, "relaxed_equitune": 8,
                      "relaxed_multi_equitune": 7}
    assert len(prompts(config)) == 8 * 10 and prompts(config)[0][2] == "The gay Black man was known for"
    assert len(config.equivariant_ids(tokenizer)) == 6 + len(config.neutral_words)


def test_regard_scores_and_gaps(tiny_regard):
    from equitune_jax.main.gpt2_fairness import RegardClassifier, regard_summary

    classifier = RegardClassifier(str(tiny_regard))
    texts = ["the xyz was known for being kind.", "the xyz worked as a cook."]
    probs = classifier.probabilities(texts)
    assert probs.shape == (2, 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
    config = Gpt2FairnessConfig(word_sets=[[" man", " woman"], [" Black", " White"]])
    rows = [{"subject": s, "regard_probs": p} for s, p in
            [("Black man", [0.1, 0.2, 0.7, 0.0]), ("Black man", [0.3, 0.2, 0.5, 0.0]),
             ("Black woman", [0.5, 0.1, 0.4, 0.0]), ("White man", [0.2, 0.2, 0.6, 0.0]),
             ("White woman", [0.0, 0.0, 1.0, 0.0])]]
    summary = regard_summary(rows, config)
    regard = {s: v["regard"] for s, v in summary["per_subject"].items()}
    assert regard == pytest.approx({"Black man": 0.4, "Black woman": -0.1, "White man": 0.4, "White woman": 1.0})
    assert summary["regard_gap"] == pytest.approx(1.1)
    # man: (0.4 + 0.4) / 2 vs woman: (-0.1 + 1.0) / 2; Black: (0.4 - 0.1) / 2 vs White: (0.4 + 1.0) / 2
    assert summary["factor_gaps"] == pytest.approx([0.05, 0.55])
    with pytest.raises(ValueError, match="lack"):
        bad = tiny_regard.parent / "bad"
        cfg = json.loads((tiny_regard / "config.json").read_text())
        cfg["id2label"] = {"0": "a", "1": "b", "2": "c", "3": "d"}
        bad.mkdir(exist_ok=True)
        for f in tiny_regard.iterdir():
            (bad / f.name).write_bytes(f.read_bytes())
        (bad / "config.json").write_text(json.dumps(cfg))
        RegardClassifier(str(bad))


@pytest.mark.slow  # tiny GPT-2 and BERT, four wrappers, per-length compiles: minutes on the shared 2-core CPU
def test_gpt2_fairness_pipeline_exact_swaps_and_regard(tiny_gpt2, tiny_regard, in_tmp):
    from equitune_jax.main import gpt2_fairness

    config = parse_config(Gpt2FairnessConfig, CONFIGS / "equitune" / "gpt2_fairness.yaml",
                          ["--model_path", str(tiny_gpt2), "--window", "32", "--perplexity_windows", "2",
                           "--max_prompts", "3", "--samples_per_prompt", "1", "--new_tokens", "3",
                           "--regard_classifier", str(tiny_regard),
                           "--trainer.id", "gpt2", "--trainer.log_dir", str(in_tmp / "logs")])
    result = gpt2_fairness.main(config)["methods"]
    for name in ("equitune", "multi_equitune"):
        assert result[name]["equivariance_gap"] < 1e-5
    for name in ("relaxed_equitune", "relaxed_multi_equitune"):
        assert result[name]["equivariance_gap_relaxed_tokens"] < 1e-5 < result[name]["equivariance_gap"]
    assert result["vanilla"]["equivariance_gap"] > 1e-4
    assert all(r["perplexity"] > 1 for r in result.values())
    assert all(len(r["samples"]) == 3 and "regard" in r for r in result.values())


def test_word_sets_must_be_single_tokens():
    from transformers import AutoTokenizer

    config = Gpt2FairnessConfig(word_sets=[[" man", " womanhood"]])
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer_path())
    with pytest.raises(ValueError, match=r"word_sets\[0\]"):
        config.swap_groups(tokenizer)


def _tiny_clip(folder):
    import string

    from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig, FlaxCLIPModel

    chars = string.ascii_lowercase + string.digits + ".,'"
    vocab = {}
    for c in chars:
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # the largest id, CLIP's pooling position
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    eos = vocab["<|endoftext|>"]
    text = CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=64, projection_dim=8,
                          bos_token_id=eos - 1, eos_token_id=eos, pad_token_id=eos)
    vision = CLIPVisionConfig(image_size=28, patch_size=7, hidden_size=16, intermediate_size=32,
                              num_hidden_layers=1, num_attention_heads=2, projection_dim=8)
    config = CLIPConfig.from_text_vision_configs(text, vision, projection_dim=8)
    FlaxCLIPModel(config, seed=0).save_pretrained(folder)
    return folder


@pytest.mark.slow  # model creation and five compiled methods take ~2 min on the shared CPU
def test_clip_zeroshot_pipeline_invariant_methods(tmp_path, in_tmp):
    from equitune_jax.config import ClipZeroshotConfig
    from equitune_jax.main import clip_zeroshot

    folder = _tiny_clip(tmp_path / "clip_tiny")
    transforms = ["none", "rot90_fixed", "flip_fixed", "rot90_flip_fixed", "rot90_flip", "rot90"]
    config = parse_config(ClipZeroshotConfig, CONFIGS / "equitune" / "clip_zeroshot.yaml",
                          ["--model_path", str(folder), "--data.max_images", "48", "--batch_size", "16",
                           "--transform_batch", "8", "--transforms", f"[{', '.join(transforms)}]",
                           "--logit_factor", "100", "--trainer.id", "clip", "--trainer.log_dir", str(in_tmp / "logs")])
    result = clip_zeroshot.main(config)["methods"]
    passes = {m: r["forward_passes"] for m, r in result.items()}
    assert passes == {"vanilla": 1, "equitune": 8, "equizero": 8, "multi_equitune": 6, "multi_equizero": 6}
    for method in ("equitune", "equizero", "multi_equitune", "multi_equizero"):
        accs = {result[method][t] for t in transforms}
        assert len(accs) == 1, (method, result[method])  # invariant: identical predictions under every transform
