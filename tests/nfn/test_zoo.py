"""Zoo generator: the member equals the reference's torch modules (dropout after the embedding included), the zoo's
learning rates equal torch's schedulers, vmapped step == each model alone, sharded == single device, the reference's
train subset, storage formats, loader, resume."""

import csv
import io
import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from common_jax.launch import parse_config
from nfn_jax.main import generate_zoo
from nfn_jax.weights import WeightSpaceSpec, zoo_weights_to_state_dicts
from nfn_jax.zoo.config import ZooConfig
from nfn_jax.zoo.data import ZooDataConfig
from nfn_jax.zoo.io import export_released, load_zoo, read_csv
from nfn_jax.zoo.model import ZooArchitecture, dropout_noise, init_params, logits
from nfn_jax.zoo.torch_member import TorchMember
from nfn_jax.zoo.torch_zip import load_state_dict, save_state_dict
from nfn_jax.zoo.train import ChunkSchedule, ChunkTrainer, RunSpec, train_subset

from .test_configs import CONFIGS
from .test_schedule import torch_epoch_lrs

ARCH = ZooArchitecture(task="image", embed_dim=8, num_heads=2, mlp_dim=16, classifier_hidden=8, image_size=8)
SCHEDULE = ChunkSchedule(epochs=2, warmup_epochs=1, batch_size=32, crop_padding=1)
RUNS = [RunSpec(f"run{i:05d}", "adam", lr, std, wd, 1.0, dr) for i, (lr, std, wd, dr) in enumerate(
    [(1e-2, 0.1, 1e-4, 0.0), (3e-3, 0.3, 1e-2, 0.1), (3e-2, 0.2, 1e-8, 0.2), (1e-3, 0.5, 1e-6, 0.05),
     (5e-3, 0.1, 1e-4, 0.15), (1e-2, 0.2, 1e-2, 0.0), (2e-2, 0.4, 1e-8, 0.1), (4e-3, 0.3, 1e-6, 0.2)])]


@pytest.fixture(scope="module")
def data():
    return ZooDataConfig(image_size=8, max_train=128, max_test=64).load(ARCH.max_len, ARCH.embed_dim)


class FixedMask(torch.nn.Module):
    """A torch dropout layer replaced by a given keep-mask (inverted scaling as ``nn.Dropout``)."""

    def __init__(self, keep: np.ndarray, rate: float):
        super().__init__()
        self.keep, self.rate = torch.from_numpy(keep), rate

    def forward(self, x):
        return x * self.keep / (1 - self.rate)


def test_member_matches_the_reference_torch_modules_with_dropout():
    """Issue 13 item 7: dropout after patch embedding + positions, then in each block, exactly as the reference's."""
    arch = ZooArchitecture(task="image", embed_dim=16, num_heads=2, mlp_dim=32, classifier_hidden=16, image_size=12)
    params = init_params(arch, 0.3, jax.random.PRNGKey(0))
    params = {k: v + 0.05 * jax.random.normal(jax.random.PRNGKey(i), v.shape) if k.endswith("bias") else v
              for i, (k, v) in enumerate(params.items())}  # non-zero biases
    params = {**params, **{k: jnp.asarray(v) for k, v in arch.buffers().items()}}
    images = np.random.default_rng(0).uniform(-1, 1, (5, 12, 12, 1)).astype(np.float32)
    member = TorchMember(arch, dropout=0.2)
    member.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in params.items()})
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = member.eval()(x).numpy()
    np.testing.assert_allclose(np.asarray(logits(arch, params, jnp.asarray(images))), expected, rtol=1e-5, atol=1e-5)

    rate = 0.2
    noise = np.asarray(dropout_noise(arch, jax.random.PRNGKey(1), 5, arch.num_tokens))
    keep = noise < 1 - rate
    member.train().embedding.dropout = FixedMask(keep[0], rate)
    for i, block in enumerate(member.encoder):
        block.dropout1, block.dropout2 = FixedMask(keep[1 + 2 * i], rate), FixedMask(keep[2 + 2 * i], rate)
    with torch.no_grad():
        expected = member(x).numpy()
    got = logits(arch, params, jnp.asarray(images), dropout_rate=rate, noise=jnp.asarray(noise))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    without_embedding_dropout = logits(arch, params, jnp.asarray(images), dropout_rate=rate,
                                       noise=jnp.asarray(noise).at[0].set(0.0))
    assert not np.allclose(np.asarray(without_embedding_dropout), expected, atol=1e-3)


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch: scheduler stepped without an optimiser step
def test_zoo_learning_rates_equal_torch_schedulers():
    """Issue 13 item 1: the paper zoo's per-epoch rates are torch's LinearLR + CosineAnnealingLR as the reference chains
    them (full rate at epoch index warmup - 1)."""
    config = parse_config(ZooConfig, CONFIGS / "mnist_full.yaml")
    schedule = config.schedule()
    lrs = np.asarray(config.sweeps[0].learning_rates)
    got = np.stack([schedule.epoch_lr(lrs, e) for e in range(config.epochs)], 1)
    expected = np.asarray([torch_epoch_lrs(float(lr), config.epochs, config.warmup_epochs, config.min_lr)
                           for lr in lrs])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(got[:, config.warmup_epochs - 1], lrs, rtol=1e-12)


def test_train_subset_is_the_reference_one():
    """``int(fraction * n)`` examples: ``np.random.choice`` after ``np.random.seed(3)`` (images), the first ones
    (texts)."""
    np.random.seed(3)
    np.testing.assert_array_equal(train_subset(1000, 0.7, "image", 3), np.random.choice(1000, 700, replace=False))
    np.testing.assert_array_equal(train_subset(1001, 0.9, "text", 3), np.arange(900))


def _train(trainer, data, runs):
    indices = np.asarray([int(r.run_id[3:]) for r in runs])
    params, opt_state = trainer.init(runs, indices)
    subset = train_subset(len(data.train_labels), 1.0, "image", SCHEDULE.seed)
    params, opt_state, _ = trainer.train_epoch(params, opt_state, runs, indices, 0, subset)
    return params


def test_vmapped_sharded_step_equals_each_model_alone(data):
    trainer = ChunkTrainer(ARCH, "adam", data, SCHEDULE, len(RUNS), devices=jax.devices())
    together = _train(trainer, data, RUNS)
    # really sharded along the model axis over the 8 fake devices
    leaf = together["encoder.0.fc1.weight"]
    assert trainer.mesh is not None and len({s.device for s in leaf.addressable_shards}) == 8
    assert leaf.addressable_shards[0].data.shape[0] == 1
    single = ChunkTrainer(ARCH, "adam", data, SCHEDULE, 1, devices=jax.devices()[:1])
    for i in (0, 2, 5):
        alone = _train(single, data, [RUNS[i]])
        for name, value in together.items():
            np.testing.assert_allclose(np.asarray(value[i]), np.asarray(alone[name][0]), rtol=2e-5, atol=2e-6, err_msg=name)
    # different hyper-parameters really gave different models
    assert not np.allclose(np.asarray(together["encoder.0.fc1.weight"][0]), np.asarray(together["encoder.0.fc1.weight"][1]))


def test_torch_zip_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    sd = {"a.weight": rng.standard_normal((3, 4)).astype(np.float32), "a.bias": np.arange(3, dtype=np.float32),
          "b": np.asarray(2.5, np.float64), "steps": np.arange(6, dtype=np.int64).reshape(2, 3)}
    save_state_dict(sd, tmp_path / "x.pt")
    back = load_state_dict(tmp_path / "x.pt")
    assert list(back) == list(sd)
    for k, value in sd.items():
        assert back[k].dtype == value.dtype and np.array_equal(back[k], value)
    with zipfile.ZipFile(tmp_path / "x.pt") as z:
        assert {"archive/data.pkl", "archive/version", "archive/byteorder", "archive/data/0"} <= set(z.namelist())


def test_generate_export_load_and_resume(in_tmp):
    overrides = ["--output_dir", "zoo", "--max_models", "12", "--chunk_size", "8", "--epochs", "3", "--warmup_epochs", "1",
                 "--checkpoint_epochs", "[1, 3]", "--save_best", "true", "--data.max_train", "1024", "--data.max_test", "256",
                 "--batch_size", "32",
                 "--architecture.embed_dim", "8", "--architecture.mlp_dim", "16", "--architecture.classifier_hidden", "8",
                 "--sweeps", ("[{optimizers: [adam], learning_rates: [3e-3, 1e-2, 3e-2], init_stds: [0.3, 0.5],"
                              " weight_decays: [1e-4], train_fractions: [1.0, 0.5], dropouts: [0.0]}]")]
    config = parse_config(ZooConfig, CONFIGS / "tiny_mnist.yaml", overrides)
    info = generate_zoo.main(config)
    assert info["num_runs"] == 12 and info["num_checkpoints"] == 12 * 3  # epochs 1, 3 and best1
    rows = read_csv(in_tmp / "zoo" / "metadata.csv")
    acc = np.asarray([float(r["test_top1_accuracy"]) for r in rows])
    assert np.all((acc >= 0) & (acc <= 1)) and acc.max() > 0.2  # the zoo learned (chance is 0.1)
    best = {r["run_id"]: float(r["test_top1_accuracy"]) for r in rows if r["ckpt_epoch"] == "best1"}
    assert all(best[r["run_id"]] >= float(r["test_top1_accuracy"]) for r in rows)

    # resume: drop the last shard from the manifest and its files; regeneration reproduces them exactly
    before = {p.name: p.read_bytes() for p in (in_tmp / "zoo").glob("shard_*")}
    manifest = json.loads((in_tmp / "zoo" / "manifest.json").read_text())
    last = max(manifest["done"])
    manifest["done"].remove(last)
    (in_tmp / "zoo" / "manifest.json").write_text(json.dumps(manifest))
    for p in (in_tmp / "zoo").glob(f"shard_{last:04d}*"):
        p.unlink()
    generate_zoo.main(config)
    after = {p.name: p.read_bytes() for p in (in_tmp / "zoo").glob("shard_*")}
    assert after.keys() == before.keys()
    for name, content in after.items():
        if name.endswith(".npz"):
            a, b = np.load(in_tmp / "zoo" / name), np.load(io.BytesIO(before[name]))
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
        else:
            assert content == before[name]

    # native -> released layout (per-file .pt, reference naming) -> loader; zip too; both accuracy columns
    native = load_zoo(in_tmp / "zoo", epoch="3", num_heads=2)
    assert native.spec == WeightSpaceSpec(D=8, D_k=4, D_v=4, D_A=16, h=2, n_blocks=2)
    csv_path = export_released(in_tmp / "zoo", in_tmp / "release" / "mnist_transformer", "mnist")
    names = [r["ckpt_file"] for r in read_csv(csv_path)]
    r0 = read_csv(csv_path)[0]
    assert names[0] == f"mnist/{r0['run_id']}_{r0['ckpt_epoch']}_{int(float(r0['test_top1_accuracy']) * 1e4)}.pt"
    released = load_zoo(in_tmp / "release" / "mnist_transformer", epoch="3", num_heads=2)
    for x, y in zip(zoo_weights_to_state_dicts(native.weights), zoo_weights_to_state_dicts(released.weights)):
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
    np.testing.assert_array_equal(native.accuracy, released.accuracy)

    # the AG-News variant: column test_accuracy, label "best"; read from a zip
    rows = read_csv(csv_path)
    agnews = [{**{k: v for k, v in r.items() if k != "test_top1_accuracy"}, "test_accuracy": r["test_top1_accuracy"],
               "ckpt_epoch": "best" if r["ckpt_epoch"] == "best1" else r["ckpt_epoch"]} for r in rows]
    with zipfile.ZipFile(in_tmp / "ag.zip", "w") as z:
        with open(in_tmp / "ag.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(agnews[0]))
            writer.writeheader()
            writer.writerows(agnews)
        z.write(in_tmp / "ag.csv", "ag_news_transformer/metadata/ag_news.csv")
        for r in agnews:
            z.write(in_tmp / "release" / "mnist_transformer" / r["ckpt_file"], f"ag_news_transformer/{r['ckpt_file']}")
    from_zip = load_zoo(in_tmp / "ag.zip", epoch="best", num_heads=2, threshold=0.15)
    best_native = load_zoo(in_tmp / "zoo", epoch="best1", num_heads=2, threshold=0.15)
    np.testing.assert_array_equal(from_zip.accuracy, best_native.accuracy)
    assert np.all(from_zip.accuracy >= 0.15)
