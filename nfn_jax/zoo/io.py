"""Zoo storage: native shards, the released per-file ``.pt`` layout, and a loader for both (nfn.md §5.4, §9.2-3).

Native: ``shard_XXXX_epoch_<E>.npz`` (arrays ``[M, ...]`` under the reference key names, torch layouts), one
``shard_XXXX.csv`` per shard and ``metadata.csv`` (all finished shards) with the reference columns;
``ckpt_file = shard_XXXX_epoch_<E>.npz#<index>``. Every file is written atomically (temp + rename).
Released: ``<dir>/<task>/<runid>_<epoch>_<int(acc*1e4)>.pt`` + ``<dir>/metadata/<task>.csv`` with
``ckpt_file = <task>/<file>``; accuracy column ``test_top1_accuracy`` (MNIST) or ``test_accuracy`` (AG-News).
"""

import csv
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..weights import WeightSpaceSpec, ZooWeights, infer_spec, zoo_weights_from_state_dicts
from .torch_zip import load_state_dict, save_state_dict

ACCURACY_COLUMNS = ("test_top1_accuracy", "test_accuracy")
RUN_COLUMNS = ("run_id", "optimizer", "lr", "w_init_std", "l2_regularize", "dropout", "train_fraction")


def atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def accuracy_of(row: dict) -> float:
    """The accuracy column of a metadata row, under either of the released names."""
    for col in ACCURACY_COLUMNS:
        if col in row and row[col] != "":
            return float(row[col])
    raise ValueError(f"metadata row has none of the accuracy columns {ACCURACY_COLUMNS}: {sorted(row)}")


def released_name(run_id: str, epoch: str, accuracy: float) -> str:
    return f"{run_id}_{epoch}_{int(accuracy * 1e4)}.pt"


@dataclass(frozen=True)
class LoadedZoo:
    weights: ZooWeights  # C = 1
    accuracy: np.ndarray  # [N] labels in [0, 1]
    rows: list[dict]  # the metadata rows, in the same order
    spec: WeightSpaceSpec


def _select(rows: list[dict], epoch: str, threshold: float) -> list[dict]:
    epochs = {"best": ("best", "best1"), "best1": ("best", "best1")}.get(epoch, (epoch,))
    return [r for r in rows if r["ckpt_epoch"] in epochs and accuracy_of(r) >= threshold]


def _native_state_dicts(root: Path, rows: list[dict]) -> list[dict]:
    cache: dict[str, dict] = {}
    out = []
    for r in rows:
        file, index = r["ckpt_file"].split("#")
        if file not in cache:
            with np.load(root / file) as data:
                cache[file] = {k: data[k] for k in data.files}
        out.append({k: v[int(index)] for k, v in cache[file].items()})
    return out


def load_zoo(path, *, epoch: str = "75", threshold: float = 0.0, num_heads: int = 2, dtype=np.float32) -> LoadedZoo:
    """Checkpoints at ``ckpt_epoch == epoch`` with accuracy >= ``threshold`` as :class:`ZooWeights` + labels.

    ``path``: a native zoo folder (``metadata.csv``), an unzipped release folder (``metadata/*.csv``) or a release zip.
    """
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            csvs = [n for n in archive.namelist() if "/metadata/" in f"/{n}" and n.endswith(".csv")]
            if len(csvs) != 1:
                raise ValueError(f"{path}: expected one metadata/*.csv in the zip, found {csvs}")
            base = csvs[0].rsplit("metadata/", 1)[0]
            rows = _select(list(csv.DictReader(io.TextIOWrapper(archive.open(csvs[0]), newline=""))), epoch, threshold)
            sds = [load_state_dict(archive.read(base + r["ckpt_file"])) for r in rows]
    elif (path / "metadata.csv").exists():
        rows = _select(read_csv(path / "metadata.csv"), epoch, threshold)
        sds = _native_state_dicts(path, rows)
    else:
        csvs = sorted((path / "metadata").glob("*.csv"))
        if len(csvs) != 1:
            raise ValueError(f"{path}: no metadata.csv and not exactly one metadata/*.csv (found {csvs})")
        rows = _select(read_csv(csvs[0]), epoch, threshold)
        sds = [load_state_dict(path / r["ckpt_file"]) for r in rows]
    if not rows:
        raise ValueError(f"{path}: no checkpoint with ckpt_epoch {epoch!r} and accuracy >= {threshold}")
    spec = infer_spec(sds[0], num_heads)
    weights = zoo_weights_from_state_dicts(sds, spec, dtype)
    return LoadedZoo(weights, np.asarray([accuracy_of(r) for r in rows], np.float32), rows, spec)


def export_released(native_dir, out_dir, task_name: str = "mnist") -> Path:
    """Write a native zoo in the released layout: ``<out>/<task>/*.pt`` + ``<out>/metadata/<task>.csv``."""
    native_dir, out_dir = Path(native_dir), Path(out_dir)
    rows = read_csv(native_dir / "metadata.csv")
    (out_dir / task_name).mkdir(parents=True, exist_ok=True)
    (out_dir / "metadata").mkdir(parents=True, exist_ok=True)
    out_rows = []
    for r, sd in zip(rows, _native_state_dicts(native_dir, rows)):
        name = released_name(r["run_id"], r["ckpt_epoch"], accuracy_of(r))
        atomic_write(out_dir / task_name / name, lambda tmp, sd=sd: save_state_dict(sd, tmp))
        out_rows.append({**r, "ckpt_file": f"{task_name}/{name}"})
    csv_path = out_dir / "metadata" / f"{task_name}.csv"
    write_csv(csv_path, out_rows, list(rows[0].keys()))
    return csv_path
