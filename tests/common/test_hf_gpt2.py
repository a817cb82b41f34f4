"""HF GPT2LMHeadModel in and out through levanter's converter (common_jax.hf), offline: logits equal the torch
forward, export reloads in transformers, the round trip is bit-exact, bad tensors and fields are named; and how
sources resolve without network."""

import json
import shutil

import equinox as eqx
import haliax as hax
import numpy as np
import pytest
from levanter.layers.attention import AttentionMask
from levanter.models.gpt2 import Gpt2LMHeadModel

from common_jax.data.tokenizers import local_tokenizer
from common_jax.hf import TensorMismatchError, UnsupportedConfigError, load_pretrained, save_pretrained
from common_jax.hf.source import parse_source

from .hf_checkpoints import assert_bit_exact, assert_parity, edited_copy, max_diff, spread_weights

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

SIZES = dict(vocab_size=97, n_positions=16, n_embd=32, n_layer=2, n_head=4)
IDS = np.random.RandomState(0).randint(0, 97, (2, 10))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_gpt2")
    model = spread_weights(transformers.GPT2LMHeadModel(transformers.GPT2Config(**SIZES)))
    model.tie_weights()
    model.save_pretrained(folder)
    return folder, model


def lm_logits(model):
    causal = eqx.filter_jit(lambda m, ids: m(ids, attn_mask=AttentionMask.causal()))
    return causal(eqx.nn.inference_mode(model), hax.named(IDS, ("batch", "position")))


def test_imported_gpt2_is_levanters_and_matches_the_torch_forward(checkpoint):
    folder, torch_model = checkpoint
    model = load_pretrained(f"hf:{folder}")
    assert isinstance(model, Gpt2LMHeadModel) and model.Vocab.size == 97
    reference = torch_model(torch.tensor(IDS)).logits.detach().numpy()
    assert_parity("HF GPT2LMHeadModel (levanter's converter)", lm_logits(model), reference)


def test_export_reloads_in_transformers_and_round_trips_bit_exactly(checkpoint, tmp_path):
    folder, torch_model = checkpoint
    model = load_pretrained(folder)
    save_pretrained(model, tmp_path / "out", tokenizer=local_tokenizer("gpt2", tmp_path))  # reloaded from the folder
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["eos_token_id"] is None  # 50256 >= vocab 97
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    reference = torch_model(torch.tensor(IDS)).logits.detach().numpy()
    assert max_diff(reloaded(torch.tensor(IDS)).logits.detach().numpy(), reference) == 0.0
    assert_bit_exact(load_pretrained(tmp_path / "out"), model)


@pytest.mark.parametrize("edit, named", [
    (dict(drop="transformer.h.1.mlp.c_fc.bias"), r"lacks .*transformer\.h\.1\.mlp\.c_fc\.bias"),
    (dict(add="transformer.h.0.extra"), r"unexpected .*transformer\.h\.0\.extra"),
    (dict(reshape="transformer.wpe.weight"), r"transformer\.wpe\.weight: found \(15, 32\), expected \(16, 32\)"),
])
def test_missing_extra_and_misshaped_tensors_are_named(checkpoint, tmp_path, edit, named):
    with pytest.raises(TensorMismatchError, match=named):
        load_pretrained(edited_copy(checkpoint[0], tmp_path, **edit))


@pytest.mark.parametrize("overrides, field", [
    (dict(n_inner=40), "n_inner"), (dict(activation_function="gelu_pytorch_tanh"), "activation_function"),
    (dict(scale_attn_weights=False), "scale_attn_weights"), (dict(tie_word_embeddings=False), "tie_word_embeddings"),
])
def test_inexpressible_config_fields_are_named(checkpoint, tmp_path, overrides, field):
    shutil.copytree(checkpoint[0], tmp_path / "ckpt")
    config = {**json.loads((tmp_path / "ckpt" / "config.json").read_text()), **overrides}
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedConfigError, match=field):
        load_pretrained(tmp_path / "ckpt")


def test_a_hub_id_resolves_to_its_snapshot(checkpoint, monkeypatch):
    import huggingface_hub

    requested = []

    def snapshot_download(repo_id, allow_patterns):
        requested.append((repo_id, allow_patterns))
        return str(checkpoint[0])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    source = parse_source("hf:someone/tiny-gpt2")
    assert (source.kind, source.location) == ("hf", str(checkpoint[0]))
    assert len(requested) == 1 and requested[0][0] == "someone/tiny-gpt2"
    assert "model.safetensors" in requested[0][1] and "pytorch_model.bin" not in requested[0][1]


def test_sources_resolve_offline_or_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        load_pretrained(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="fetching it from the Hugging Face hub failed"):
        load_pretrained("hf:no-such-org/no-such-model")  # HF_HUB_OFFLINE=1 in tests: nothing is downloaded
    (tmp_path / "weights_only").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_pretrained(tmp_path / "weights_only")
