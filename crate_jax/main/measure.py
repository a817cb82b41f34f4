"""Layer-wise coding rate R^c and sparsity of a trained CRATE checkpoint (spec crate.md §4, §10.2).

    python -m crate_jax.main.measure --config configs/crate/tiny_mnist.yaml --checkpoint CKPT --out DIR \
        [--num_images 200] [--measure_point mssa_input|caption] [--eps 0.01] [--init_baseline]

``--config`` is the training YAML (model and data); ``--checkpoint`` a levanter checkpoint (a run folder or
one ``step-N``, as written by training or by ``crate_jax.main.import_torch``). Measures the first
``num_images`` test images and writes ``DIR/layers.json``, ``coding_rate.png``, ``sparsity.png`` (non-zero
fraction) and ``attention_maps.png``. ``--init_baseline`` adds the same curves for the untrained model that
training with this config starts from.
"""

import argparse

import equinox as eqx
import jax

from common_jax.checkpoints import load_model
from common_jax.launch import parse_config

from ..analysis.layerwise import MEASURE_POINTS
from ..analysis.measure import first_images, measure_and_plot
from ..config import CrateConfig
from .train import TrainClassifierConfig


def initial_model(config: TrainClassifierConfig):
    """The model ``common_jax.main.train_classifier`` starts training from (same key split)."""
    model_key, _ = jax.random.split(jax.random.PRNGKey(config.trainer.seed))
    return eqx.filter_jit(lambda key: config.model.build(key=key))(model_key)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training YAML (its model and data sections are used)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num_images", type=int, default=200)
    parser.add_argument("--measure_point", choices=MEASURE_POINTS, default="mssa_input")
    parser.add_argument("--eps", type=float, default=0.01)
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--init_baseline", action="store_true")
    args = parser.parse_args(argv)

    config = parse_config(TrainClassifierConfig, args.config)
    if not isinstance(config.model, CrateConfig):
        raise ValueError(f"--config {args.config}: model.type must be crate to measure R^c and sparsity")
    abstract = eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))
    models = {"init": initial_model(config)} if args.init_baseline else {}
    models["checkpoint"] = load_model(abstract, args.checkpoint)
    splits = config.data.load()
    images, raw = first_images(getattr(splits, args.split), args.num_images)
    return measure_and_plot(models, images, raw, args.out, measure_point=args.measure_point, eps=args.eps,
                            title=f"{args.checkpoint} ({args.split}, {images.axes[0].size} images)",
                            extra={"checkpoint": args.checkpoint, "split": args.split})


if __name__ == "__main__":
    main()
