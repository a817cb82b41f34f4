"""Convert a reference-implementation PyTorch checkpoint into a levanter checkpoint (spec crate.md §3).

    python -m crate_jax.main.import_torch --checkpoint crate_small.pth \
        --config configs/crate/crate_small_imagenet.yaml --out DIR [--drop_head] [--allow_pickle]

Reads the ``.pth`` (raw state_dict, ``{"state_dict": ...}`` or ``{"model": ...}``, ``module.`` prefix or not;
needs the optional ``torch`` extra), checks every tensor against the YAML's ``model`` section, and writes
``DIR/step-0`` with the model under ``model`` (read back by ``common_jax.checkpoints.load_model``). An
existing checkpoint in ``DIR`` is never overwritten.
"""

import argparse
from pathlib import Path

from levanter.checkpoint import save_checkpoint

from common_jax.launch import parse_config

from ..config import CrateConfig
from ..torch_import import load_torch_state_dict, read_torch_checkpoint
from .train import TrainClassifierConfig


def write_checkpoint(model, out: str | Path) -> Path:
    """Save ``{"model": model}`` as levanter checkpoint ``out/step-0``; refuses to overwrite one."""
    path = Path(out) / "step-0"
    if path.exists():
        raise FileExistsError(f"{path} already exists; choose another --out")
    save_checkpoint({"model": model}, step=0, checkpoint_path=str(path), is_temporary=False)
    return path


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the .pth file")
    parser.add_argument("--config", required=True, help="a YAML under configs/crate/ with model.type crate")
    parser.add_argument("--out", required=True)
    parser.add_argument("--drop_head", action="store_true", help="skip mlp_head.* and keep a fresh head")
    parser.add_argument("--allow_pickle", action="store_true",
                        help="torch.load(weights_only=False): trusted files only")
    args = parser.parse_args(argv)

    config = parse_config(TrainClassifierConfig, args.config)
    if not isinstance(config.model, CrateConfig):
        raise ValueError(f"--config {args.config}: model.type must be crate")
    if (Path(args.out) / "step-0").exists():
        raise FileExistsError(f"{Path(args.out) / 'step-0'} already exists; choose another --out")
    state_dict = read_torch_checkpoint(args.checkpoint, allow_pickle=args.allow_pickle)
    model = load_torch_state_dict(config.model, state_dict, drop_head=args.drop_head)
    path = write_checkpoint(model, args.out)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
