"""The GPT-2 fairness pipeline end to end on a tiny random GPT-2 saved offline in the HF layout."""

import pytest

from common_jax.launch import parse_config
from equitune_jax.config import Gpt2FairnessConfig

from .test_configs import CONFIGS


@pytest.fixture
def tiny_gpt2(tmp_path):
    from transformers import FlaxGPT2LMHeadModel, GPT2Config

    config = GPT2Config(vocab_size=50257, n_positions=64, n_embd=16, n_layer=1, n_head=2,
                        initializer_range=0.5)  # far from uniform, so a non-equivariant model shows
    FlaxGPT2LMHeadModel(config, seed=0).save_pretrained(tmp_path / "gpt2_tiny")
    return tmp_path / "gpt2_tiny"


@pytest.mark.slow  # ~2.5 min on the shared 2-core CPU (model creation and per-length compiles)
def test_gpt2_fairness_pipeline_exact_swaps(tiny_gpt2, in_tmp):
    from equitune_jax.main import gpt2_fairness

    config = parse_config(Gpt2FairnessConfig, CONFIGS / "equitune" / "gpt2_fairness.yaml",
                          ["--model_path", str(tiny_gpt2), "--window", "32", "--perplexity_windows", "2",
                           "--max_prompts", "3", "--sampled_prompts", "1", "--new_tokens", "3",
                           "--trainer.id", "gpt2", "--trainer.log_dir", str(in_tmp / "logs")])
    result = gpt2_fairness.main(config)["methods"]
    assert result["equitune"]["forward_passes"] == 4 and result["multi_equitune"]["forward_passes"] == 4
    assert result["equitune"]["equivariance_gap"] < 1e-5
    assert result["multi_equitune"]["equivariance_gap"] < 1e-5
    assert result["vanilla"]["equivariance_gap"] > 1e-4
    assert all(r["perplexity"] > 1 for r in result.values())


def test_word_sets_must_be_single_tokens():
    from transformers import AutoTokenizer

    config = Gpt2FairnessConfig(word_sets=[[" man", " womanhood"]])
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer_path())
    with pytest.raises(ValueError, match=r"word_sets\[0\]"):
        config.swap_groups(tokenizer)


def _tiny_clip(folder):
    import json
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
    config = parse_config(ClipZeroshotConfig, CONFIGS / "equitune" / "clip_zeroshot.yaml",
                          ["--model_path", str(folder), "--max_images", "48", "--batch_size", "16",
                           "--transforms", "[none, rot90, flip, rot90_flip, random]", "--logit_factor", "100",
                           "--trainer.id", "clip", "--trainer.log_dir", str(in_tmp / "logs")])
    result = clip_zeroshot.main(config)["methods"]
    passes = {m: r["forward_passes"] for m, r in result.items()}
    assert passes == {"vanilla": 1, "equitune": 8, "equizero": 8, "multi_equitune": 6, "multi_equizero": 6}
    for method in ("equitune", "equizero", "multi_equitune", "multi_equizero"):
        accs = {result[method][t] for t in ("none", "rot90", "flip", "rot90_flip", "random")}
        assert len(accs) == 1, (method, result[method])  # invariant: identical predictions under every transform
