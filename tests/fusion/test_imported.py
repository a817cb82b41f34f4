"""The fusion CLI on imported models (issue 11 item 4): HF folders in, the OT-fused model out as an HF folder."""

from pathlib import Path

import jax
import numpy as np
import pytest
from draccus.utils import ParsingError

from common_jax.launch import ConfigError, parse_config
from common_jax.models import ViTConfig
from fusion_jax import fuse
from fusion_jax.main import fuse as fuse_main

from .helpers import assert_same_weights

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# not the YAML parents' architecture (width 64, 3 blocks, tanh GELU): the CLI must take it from the checkpoints
HF_VIT = ViTConfig(image_size=28, patch_size=7, num_channels=1, num_classes=10, hidden_dim=32, num_layers=2,
                   num_heads=4, mlp_dim=64, activation="gelu")


def test_cli_fuses_hf_folders_and_exports_the_fusion(in_tmp):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from common_jax.hf import load_pretrained, save_pretrained

    folders = [save_pretrained(HF_VIT.build(key=jax.random.PRNGKey(seed)), in_tmp / f"vit{seed}") for seed in (1, 2)]
    sources = [f"hf:{f}" for f in folders]
    args = ["--checkpoints", f"[{', '.join(sources)}]", "--export_hf", str(in_tmp / "fused"), "--out_dir",
            str(in_tmp / "out"), "--finetune.steps", "0", "--eval.reg_sweep", "[0.08]",
            "--task.max_test_examples", "100"]
    config = parse_config(fuse_main.FuseJobConfig, CONFIGS / "fusion/tiny_mnist.yaml", args)
    results = fuse_main.main(config)
    assert results["export_hf"] == str(in_tmp / "fused")

    # the export is the configured one-shot OT fusion of the imported parents, bit for bit
    parents = [load_pretrained(s) for s in sources]
    assert parents[0].config.activation == "gelu" and parents[0].config.hidden_dim == 32
    task = config.task.load()
    acts = config.fusion.acts
    expected = fuse(parents, 1, config.fusion, task.probe(acts.num_samples, acts.seed, acts.sampling))
    assert_same_weights(load_pretrained(in_tmp / "fused"), expected)

    # and transformers computes the same logits and accuracy as the fusion CLI measured in JAX
    images, labels = task.test
    reloaded = transformers.ViTForImageClassification.from_pretrained(in_tmp / "fused").eval()
    with torch.no_grad():
        logits = reloaded(pixel_values=torch.from_numpy(images.transpose(0, 3, 1, 2))).logits.numpy()
    np.testing.assert_allclose(logits, task.logits(expected), atol=1e-4)
    assert float((logits.argmax(1) == labels).mean()) == results["ot"]

    with pytest.raises(ConfigError, match="export_hf: .* already holds a checkpoint"):
        fuse_main.main(config)
    missing = parse_config(fuse_main.FuseJobConfig, CONFIGS / "fusion/tiny_mnist.yaml",
                           ["--checkpoints", f"[{sources[0]}, hf:{in_tmp / 'nowhere'}]"])
    with pytest.raises(ConfigError, match="checkpoints\\[1\\]"):
        fuse_main.main(missing)


def test_sources_need_parents_only_for_levanter_checkpoints():
    parse = lambda checkpoints: parse_config(  # noqa: E731
        fuse_main.FuseJobConfig, CONFIGS / "fusion/tiny_mnist.yaml", ["--checkpoints", checkpoints])
    assert len(parse("[hf:a, timm:b, hf:org/c]").checkpoints) == 3  # imported: any number >= 2
    for checkpoints, message in (("[hf:a, ckpt/b, hf:c]", "task.parents has 2 models"), ("[hf:a]", "at least two")):
        with pytest.raises(ParsingError) as info:
            parse(checkpoints)
        assert message in str(info.value.__cause__)


def test_timm_and_hf_sources_mix_and_the_fusion_exports_to_transformers(in_tmp):
    """timm sources (timm's hub layout) and HF folders load side by side with their own architecture; a timm model
    fused with its own HF export by exact OT is itself, and a fusion of two timm models exports to an HF folder
    that transformers runs to the fused model's logits."""
    timm = pytest.importorskip("timm")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from timm.models import save_for_hf

    from fusion_jax.sources import export_hf, load_parents

    from .helpers import config, logits, probe_images

    args = dict(img_size=28, patch_size=7, in_chans=1, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0,
                num_classes=10)
    for seed in (1, 2):
        torch.manual_seed(seed)
        save_for_hf(timm.create_model("vit_tiny_patch16_224", pretrained=False, **args), str(in_tmp / f"timm{seed}"),
                    model_args=args, safe_serialization=True)
    timm_a, timm_b = load_parents([f"timm:{in_tmp / 'timm1'}", f"timm:{in_tmp / 'timm2'}"], task_config=None)
    assert timm_a.config.hidden_dim == 32 and timm_a.config.layer_norm_eps == 1e-6  # timm's, not the YAML's
    (hf_a,) = load_parents([f"hf:{export_hf(timm_a, in_tmp / 'hf_a')}"], task_config=None)
    images = probe_images()
    assert_same_weights(fuse([timm_a, hf_a], 1, config(solver="emd"), images), hf_a)

    fused = fuse([timm_a, timm_b], 1, config(), images)
    reloaded = transformers.ViTForImageClassification.from_pretrained(export_hf(fused, in_tmp / "fused")).eval()
    with torch.no_grad():
        torch_logits = reloaded(pixel_values=torch.from_numpy(images.transpose(0, 3, 1, 2))).logits.numpy()
    np.testing.assert_allclose(torch_logits, logits(fused, images), atol=1e-4)
