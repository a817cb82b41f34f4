"""HF BertForMaskedLM in and out (common_jax.hf): MLM logits equal the torch forward (with padding and token
types), export reloads in transformers, the round trip is bit-exact, and what cannot be expressed is named."""

import json

import haliax as hax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from scipy.special import erf

from common_jax.hf import TensorMismatchError, UnsupportedConfigError, load_pretrained, save_pretrained
from common_jax.models.bert import BertConfig
from common_jax.models.mlp import ACTIVATIONS

from .hf_checkpoints import (
    TOLERANCE,
    assert_bit_exact,
    assert_parity,
    edited_copy,
    forward,
    max_diff,
    mlp_activation,
    random_project_model,
    spread_weights,
)

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

SIZES = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
             max_position_embeddings=12, type_vocab_size=2)


def spread(model):
    """``model`` with spread weights, the MLM decoder tied again to the redrawn word embeddings."""
    model = spread_weights(model)
    model.tie_weights()
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_bert")
    model = spread(transformers.BertForMaskedLM(transformers.BertConfig(**SIZES)))
    model.save_pretrained(folder)
    return folder, model


def batch():
    rng = np.random.RandomState(0)
    ids, types = rng.randint(0, 50, (2, 7)), rng.randint(0, 2, (2, 7))
    mask = np.ones((2, 7), np.int64)
    mask[1, 5:] = 0
    return ids, mask, types


def project_logits(model, ids, mask, types):
    named = lambda a: hax.named(a, ("batch", "position"))  # noqa: E731
    return forward(model, named(ids), named(mask), named(types))


def torch_logits(model, ids, mask, types):
    return model(torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types)).logits


def test_imported_bert_matches_the_torch_forward(checkpoint):
    folder, torch_model = checkpoint
    model = load_pretrained(folder)
    assert (model.config.activation, model.config.head_activation) == ("gelu", "gelu")
    reference = torch_logits(torch_model, *batch()).detach().numpy()
    assert_parity("HF BertForMaskedLM (padding mask, token types)", project_logits(model, *batch()), reference)


def test_export_reloads_in_transformers_and_round_trips_bit_exactly(checkpoint, tmp_path):
    folder, torch_model = checkpoint
    model = load_pretrained(folder)
    save_pretrained(model, tmp_path / "out")
    reloaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "out").eval()
    assert max_diff(torch_logits(reloaded, *batch()).detach().numpy(),
                    torch_logits(torch_model, *batch()).detach().numpy()) == 0.0
    assert_bit_exact(load_pretrained(tmp_path / "out"), model)


def test_legacy_layer_norm_names_and_tied_copies_load(checkpoint, tmp_path):
    folder, _ = checkpoint
    tensors = load_file(folder / "model.safetensors")
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in tensors.items()}
    legacy["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"]
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    save_file(legacy, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    assert_bit_exact(load_pretrained(tmp_path), load_pretrained(folder))
    legacy["cls.predictions.decoder.weight"] = legacy["cls.predictions.decoder.weight"] + 1
    save_file(legacy, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(TensorMismatchError, match="cls.predictions.decoder.weight differs"):
        load_pretrained(tmp_path)


def test_pretraining_heads_are_dropped_only_on_request(tmp_path):
    pretraining = spread(transformers.BertForPreTraining(transformers.BertConfig(**SIZES)))
    pretraining.save_pretrained(tmp_path)
    with pytest.raises(TensorMismatchError, match=r"bert\.pooler\.dense\.bias.*ignore="):
        load_pretrained(tmp_path)
    model = load_pretrained(tmp_path, ignore=("bert.pooler.", "cls.seq_relationship."))
    ids, mask, types = batch()
    reference = pretraining(torch.tensor(ids), attention_mask=torch.tensor(mask),
                            token_type_ids=torch.tensor(types)).prediction_logits.detach().numpy()
    assert_parity("HF BertForPreTraining (MLM logits)", project_logits(model, ids, mask, types), reference)


@pytest.mark.parametrize("edit, named", [
    (dict(drop="bert.encoder.layer.1.attention.self.value.weight"), r"lacks .*layer\.1\.attention\.self\.value"),
    (dict(add="bert.encoder.layer.0.extra"), r"unexpected .*bert\.encoder\.layer\.0\.extra"),
    (dict(reshape="bert.encoder.layer.0.intermediate.dense.bias"),
     r"intermediate\.dense\.bias: found \(23,\), expected \(24,\)"),
])
def test_missing_extra_and_misshaped_tensors_are_named(checkpoint, tmp_path, edit, named):
    with pytest.raises(TensorMismatchError, match=named):
        load_pretrained(edited_copy(checkpoint[0], tmp_path, **edit))


@pytest.mark.parametrize("overrides, field", [
    (dict(position_embedding_type="relative_key"), "position_embedding_type"), (dict(hidden_act="silu"), "hidden_act"),
    (dict(is_decoder=True), "is_decoder"), (dict(architectures=["BertForSequenceClassification"]), "architectures"),
])
def test_inexpressible_config_fields_are_named(checkpoint, tmp_path, overrides, field):
    folder, _ = checkpoint
    config = {**json.loads((folder / "config.json").read_text()), **overrides}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(UnsupportedConfigError, match=field):
        load_pretrained(tmp_path)


def test_default_activations_are_the_original_ones_and_export_needs_them_equal(tmp_path):
    x = np.linspace(-4, 4, 101, dtype=np.float32)
    erf_gelu = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    config = BertConfig(vocab_size=50, max_position=12, hidden_dim=16, num_layers=2, num_heads=2, mlp_dim=24)
    assert mlp_activation(config) is hax.nn.gelu  # the blocks' tanh GELU, as before the field existed
    np.testing.assert_allclose(ACTIVATIONS[config.head_activation](hax.named(x, "embed")).array, erf_gelu, atol=1e-6)
    with pytest.raises(UnsupportedConfigError, match="model.head_activation"):
        save_pretrained(random_project_model(config), tmp_path / "default")
    exportable = BertConfig(**{**vars(config), "activation": "gelu"})
    model = random_project_model(exportable)
    save_pretrained(model, tmp_path / "gelu")
    reloaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "gelu").eval()
    assert max_diff(project_logits(model, *batch()), torch_logits(reloaded, *batch()).detach().numpy()) <= TOLERANCE
