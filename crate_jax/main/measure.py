"""Layer-wise coding rate and sparsity of a trained CRATE checkpoint (spec crate.md §4, §10.2), or of a ViT.

    python -m crate_jax.main.measure --config configs/crate/tiny_mnist.yaml --checkpoint CKPT --out DIR \
        [--num_images 200] [--measure_point mssa_input|caption] [--eps 0.01] [--init_baseline]
    python -m crate_jax.main.measure --config configs/crate/vit_tiny_mnist.yaml --pretrained SOURCE --out DIR

``--config`` is a training YAML (its data section gives the images; its model section the architecture of
``--checkpoint``); ``--checkpoint`` a levanter checkpoint (a run folder or one ``step-N``, as written by training or
by ``crate_jax.main.import_torch``); ``--pretrained`` instead a ViT from outside (``timm:DIR``, ``timm:NAME``, an HF
folder or hub id: :func:`common_jax.hf.load_pretrained`), whose image size and channels must match the data.
Measures the first ``num_images`` images of the split and writes ``DIR/layers.json``, ``coding_rate.png`` and
``sparsity.png`` (non-zero fraction). For CRATE: R^c at ``measure_point`` and the ISTA output's sparsity, plus
``attention_maps.png``. For a ViT (a ``model.type: vit`` checkpoint or any ``--pretrained``), which has no MSSA
subspaces: R(Z) and sparsity of each block's output tokens (:mod:`crate_jax.analysis.token_rate`).
``--init_baseline`` adds the same curves for the untrained model that training with this config starts from.
"""

import argparse

import equinox as eqx
import jax

from common_jax.checkpoints import load_model
from common_jax.hf import load_pretrained
from common_jax.launch import parse_config
from common_jax.models.vit import ViT, ViTConfig

from ..analysis.layerwise import MEASURE_POINTS
from ..analysis.measure import first_images, measure_and_plot, measure_vits_and_plot
from ..config import CrateConfig
from .train import TrainClassifierConfig


def initial_model(config: TrainClassifierConfig):
    """The model ``common_jax.main.train_classifier`` starts training from (same key split)."""
    model_key, _ = jax.random.split(jax.random.PRNGKey(config.trainer.seed))
    return eqx.filter_jit(lambda key: config.model.build(key=key))(model_key)


def pretrained_vit(source: str, images) -> ViT:
    """The ViT at ``source``, checked against the measured images ``[batch, height, width, channel]``."""
    model = load_pretrained(source)
    if not isinstance(model, ViT):
        raise ValueError(f"--pretrained {source}: a {type(model).__name__}, not a ViT")
    shape = tuple(ax.size for ax in images.axes[1:])
    expected = (model.config.image_size, model.config.image_size, model.config.num_channels)
    if shape != expected:
        raise ValueError(f"--pretrained {source} takes {expected} images (height, width, channel) but the --config "
                         f"data gives {shape}: pick a config whose data matches the model")
    return model


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training YAML (its data section, and the model section "
                                                         "of --checkpoint)")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint")
    weights.add_argument("--pretrained", help="timm:DIR, timm:NAME, an HF folder or hub id (a ViT)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--num_images", type=int, default=200)
    parser.add_argument("--measure_point", choices=MEASURE_POINTS, default=None, help="CRATE only (default "
                                                                                       "mssa_input)")
    parser.add_argument("--eps", type=float, default=0.01)
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--init_baseline", action="store_true")
    args = parser.parse_args(argv)

    config = parse_config(TrainClassifierConfig, args.config)
    is_vit = args.pretrained is not None or isinstance(config.model, ViTConfig)
    if args.checkpoint is not None and not isinstance(config.model, (CrateConfig, ViTConfig)):
        parser.error(f"--config {args.config}: model.type must be crate or vit")
    if is_vit and args.measure_point is not None:
        parser.error("--measure_point applies to CRATE; a ViT is measured at its block outputs")
    if args.pretrained is not None and args.init_baseline:
        parser.error("--init_baseline applies to --checkpoint (the untrained model of the config)")
    splits = config.data.load()
    images, raw = first_images(getattr(splits, args.split), args.num_images)
    models = {"init": initial_model(config)} if args.init_baseline else {}
    if args.pretrained is not None:
        models[args.pretrained] = pretrained_vit(args.pretrained, images)
    else:
        abstract = eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))
        models["checkpoint"] = load_model(abstract, args.checkpoint)
    name = args.pretrained or args.checkpoint
    title = f"{name} ({args.split}, {images.axes[0].size} images)"
    extra = {"pretrained" if args.pretrained else "checkpoint": name, "split": args.split}
    if is_vit:
        return measure_vits_and_plot(models, images, args.out, eps=args.eps, title=title, extra=extra)
    return measure_and_plot(models, images, raw, args.out, measure_point=args.measure_point or MEASURE_POINTS[0],
                            eps=args.eps, title=title, extra=extra)


if __name__ == "__main__":
    main()
