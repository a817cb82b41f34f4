"""The measurement CLI on a ViT from outside (``--pretrained timm:DIR``): per-layer coding rate R(Z) and sparsity of
the block outputs, equal to the same estimator applied to timm's own block outputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from common_jax.hf import load_pretrained
from crate_jax.analysis.token_rate import measure_vit_layers
from crate_jax.main import measure

timm = pytest.importorskip("timm")
torch = pytest.importorskip("torch")

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "crate"
ARGS = dict(img_size=28, patch_size=7, in_chans=1, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=10)


@pytest.fixture(scope="module")
def timm_vit(tmp_path_factory):
    from timm.models import save_for_hf

    folder = tmp_path_factory.mktemp("timm_mnist_vit")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **ARGS).eval()
    save_for_hf(model, str(folder), model_args=ARGS, safe_serialization=True)
    return folder, model


def test_block_output_coding_rate_matches_timms_block_outputs(timm_vit):
    import haliax as hax

    folder, model = timm_vit
    images = np.random.RandomState(0).randn(5, 1, 28, 28).astype(np.float32)
    outputs = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach().numpy()))
             for block in model.blocks]
    model(torch.tensor(images))
    for hook in hooks:
        hook.remove()
    stats = measure_vit_layers(load_pretrained(f"timm:{folder}"),
                               hax.named(images.transpose(0, 2, 3, 1), ("batch", "height", "width", "channel")),
                               batch_size=2)
    assert len(stats) == 2
    for z, s in zip(outputs, stats, strict=True):
        x = z / np.linalg.norm(z, axis=-1, keepdims=True)
        n, d = x.shape[1:]
        rates = [0.5 * np.linalg.slogdet(np.eye(n) + d / (n * 0.01) * xi @ xi.T)[1] for xi in x]
        np.testing.assert_allclose(s.coding_rate_mean, np.mean(rates), rtol=1e-4)
        np.testing.assert_allclose(s.coding_rate_std, np.std(rates, ddof=1), rtol=1e-3)
        assert s.nonzero_fraction == (z != 0).mean()
        assert 0 < s.coding_rate_mean <= (n / 2) * np.log(1 + d / (n * 0.01))


def test_measure_cli_on_a_timm_vit_writes_json_and_plots(timm_vit, tmp_path):
    folder, _ = timm_vit
    source = f"timm:{folder}"
    result = measure.main(["--config", str(CONFIGS / "vit_tiny_mnist.yaml"), "--pretrained", source,
                           "--out", str(tmp_path), "--num_images", "6"])
    saved = json.loads((tmp_path / "layers.json").read_text())
    assert saved == result and saved["measure_point"] == "block_output" and saved["pretrained"] == source
    assert len(saved["curves"][source]) == 2 and saved["num_images"] == 6
    assert (tmp_path / "coding_rate.png").stat().st_size > 0 and (tmp_path / "sparsity.png").stat().st_size > 0


def test_a_vit_for_other_images_is_a_clear_error(tmp_path):
    from timm.models import save_for_hf

    rgb = {**ARGS, "img_size": 35, "in_chans": 3}
    save_for_hf(timm.create_model("vit_tiny_patch16_224", pretrained=False, **rgb), str(tmp_path), model_args=rgb,
                safe_serialization=True)
    with pytest.raises(ValueError, match=r"takes \(35, 35, 3\) images .* gives \(28, 28, 1\)"):
        measure.main(["--config", str(CONFIGS / "vit_tiny_mnist.yaml"), "--pretrained", f"timm:{tmp_path}",
                      "--out", str(tmp_path / "out"), "--num_images", "2"])


def test_measure_cli_on_a_vit_checkpoint_measures_block_outputs(tmp_path):
    from common_jax.launch import parse_config
    from crate_jax.analysis.measure import first_images
    from crate_jax.main.import_torch import write_checkpoint
    from crate_jax.main.train import TrainClassifierConfig

    from ..common.hf_checkpoints import random_project_model

    config = parse_config(TrainClassifierConfig, CONFIGS / "vit_tiny_mnist.yaml")
    model = random_project_model(config.model)
    write_checkpoint(model, tmp_path / "ckpt")
    result = measure.main(["--config", str(CONFIGS / "vit_tiny_mnist.yaml"), "--checkpoint", str(tmp_path / "ckpt"),
                           "--out", str(tmp_path / "out"), "--num_images", "4"])
    images, _ = first_images(config.data.load().test, 4)
    direct = [s.as_dict() for s in measure_vit_layers(model, images)]
    assert result["measure_point"] == "block_output" and result["curves"]["checkpoint"] == direct
