"""Which XLA CPU settings, thread counts and CPU models change the bits of the CRATE reproduction's computations.

    python bench/determinism.py [--probes ops training seeds cpu_models] [--steps 50] [--config tiny_mnist.yaml]
                                [--settings default one_core ...] [--seeds 0 1 2] [--emulate Haswell EPYC-Milan]

Every run happens in a fresh child process (XLA reads ``XLA_FLAGS`` once per process), under a *setting*: extra
``XLA_FLAGS``, a CPU affinity by ``taskset`` (which also sizes XLA's thread pool), and/or another CPU model by
user-mode emulation (``qemu-x86_64-static -cpu MODEL``: another vector ISA, e.g. no AVX-512, and other cache
sizes). Probes:

- ``ops``: SHA-256 of single ops of the tiny CRATE/ViT step on fixed inputs (the dots of projections, attention
  and weight gradients, exp/tanh/gelu/log/rsqrt, softmax, reductions), natively and on each ``--emulate`` model,
  with XLA's defaults and with ``--xla_cpu_enable_platform_dependent_math=false``, on 2 and on 1 CPU. Seconds.
- ``training``: ``crate_jax.main.train`` on ``configs/crate/<--config>`` for ``--steps`` steps per native
  setting (XLA's defaults twice, one CPU, ``--xla_cpu_max_isa=AVX2``, consistent math on two and on one CPU):
  SHA-256 of the final parameters, the per-step losses, the final test metrics; for each setting the first logged
  loss that differs from the first setting's. ``--settings`` picks a subset. Minutes per setting.
- ``seeds``: the same training with XLA's defaults for each of ``--seeds`` (``trainer.seed``: initialisation and
  data order); the final test accuracy of each and their spread, i.e. how far a headline accuracy moves when
  anything perturbs the run (a different CPU perturbs it less, but a 1,250-step run amplifies any perturbation).
  Run with ``--steps 1250`` for the reproduction's length: about 2.5 minutes per seed on 2 cores.
- ``cpu_models``: one loss and gradient of both reproduction models (``tiny_mnist.yaml``, ``vit_tiny_mnist.yaml``)
  on a fixed batch, natively and emulated. About 15 minutes per emulated run on 2 cores; not run by default.

Settings whose results are bit-identical are grouped. Emulated settings are skipped without qemu (Debian:
``apt-get install qemu-user-static``). Writes
``bench/results/determinism_<probe>[_<config stem>][_<steps>steps]_<cpu>.json`` (config stem and steps for the
training probes, the stem only for another ``--config``; ``<cpu>``: vendor, family and model from /proc/cpuinfo,
e.g. ``amd_25_17``) with this CPU's model and ISA flags, so that the files of several machines sit
side by side and ``bench/report.py`` compares the same probe across them.
"""

import argparse
import functools
import statistics
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from timing import cpu_description, environment, write_result

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "crate"
CONSISTENT_MATH = "--xla_cpu_enable_platform_dependent_math=false"
QEMU = "qemu-x86_64-static"
DEFAULT_CONFIG = "tiny_mnist.yaml"


@dataclass(frozen=True)
class Setting:
    """How one child process runs: extra ``XLA_FLAGS``, CPUs for ``taskset`` (None: all), a qemu CPU model (None:
    native), the training seed."""

    flags: str = ""
    cpus: str | None = None
    cpu_model: str | None = None
    seed: int = 0


TRAINING_SETTINGS = {
    "default": Setting(),
    "default_again": Setting(),
    "one_core": Setting(cpus="0"),
    "isa_avx2": Setting(flags="--xla_cpu_max_isa=AVX2"),
    "consistent_math": Setting(flags=CONSISTENT_MATH),
    "consistent_math_one_core": Setting(flags=CONSISTENT_MATH, cpus="0"),
}


def _digest(tree) -> str:
    import equinox as eqx
    import jax
    import numpy as np

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(eqx.filter(tree, eqx.is_array)):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()


def ops_child() -> dict:
    """Digest of each op's output on fixed random inputs (arguments of the jit, so nothing is constant-folded).

    Shapes of the tiny models at batch 128: 2176 = 128 x 17 tokens, width 64, MLP 256, 4 heads of 16."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    shapes = {"x": (2176, 64), "w": (64, 64), "w4": (64, 256), "h": (2176, 256), "q": (128, 4, 17, 16),
              "k": (128, 4, 17, 16), "s": (128, 4, 17, 17), "p": (2048, 49), "pw": (49, 64)}
    a = {name: jnp.asarray(rng.normal(size=shape), jnp.float32) for name, shape in shapes.items()}
    ops = {
        "dot_tokens_x_w": lambda a: a["x"] @ a["w"],
        "dot_tokens_x_mlp_in": lambda a: a["x"] @ a["w4"],
        "dot_tokens_x_mlp_out": lambda a: a["h"] @ a["w4"].T,
        "dot_patch_embedding": lambda a: a["p"] @ a["pw"],
        "dot_weight_gradient_64x64": lambda a: a["x"].T @ a["x"],
        "dot_weight_gradient_64x256": lambda a: a["x"].T @ a["h"],
        "attention_scores": lambda a: jnp.einsum("bhqd,bhkd->bhqk", a["q"], a["k"]),
        "attention_values": lambda a: jnp.einsum("bhqk,bhkd->bhqd", a["s"], a["k"]),
        "exp": lambda a: jnp.exp(a["x"]),
        "tanh": lambda a: jnp.tanh(a["x"]),
        "gelu_tanh": lambda a: jax.nn.gelu(a["x"], approximate=True),
        "gelu_erf": lambda a: jax.nn.gelu(a["x"], approximate=False),
        "log": lambda a: jnp.log(jnp.abs(a["x"]) + 1.0),
        "rsqrt": lambda a: jax.lax.rsqrt(jnp.abs(a["x"]) + 1.0),
        "softmax": lambda a: jax.nn.softmax(a["s"], -1),
        "log_softmax": lambda a: jax.nn.log_softmax(a["s"], -1),
        "sum_over_width": lambda a: a["x"].sum(-1),
        "sum_over_tokens": lambda a: a["x"].sum(0),
        "variance_over_width": lambda a: ((a["x"] - a["x"].mean(-1, keepdims=True)) ** 2).mean(-1),
    }
    return {name: hashlib.sha256(np.asarray(jax.jit(op)(a)).tobytes()).hexdigest()[:16] for name, op in ops.items()}


def training_child(config_name: str, steps: int, seed: int) -> dict:
    """Train ``configs/crate/<config_name>`` for ``steps`` steps from ``seed``: the final parameters' digest, the
    losses, the test metrics."""
    import equinox as eqx
    import jax

    from common_jax.checkpoints import load_model
    from common_jax.launch import parse_config
    from common_jax.training.run_setup import read_metrics
    from crate_jax.main import train

    with tempfile.TemporaryDirectory() as tmp:
        overrides = ["--trainer.id", "probe", "--trainer.log_dir", f"{tmp}/runs", "--trainer.checkpointer.base_path",
                     f"{tmp}/checkpoints", "--trainer.num_train_steps", str(steps), "--trainer.steps_per_eval",
                     str(steps), "--trainer.seed", str(seed)]
        config = parse_config(train.TrainClassifierConfig, CONFIGS / config_name, overrides)
        final = train.main(config)
        abstract = eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))
        model = load_model(abstract, f"{tmp}/checkpoints/probe")
        losses = [r["metrics"]["train/loss"] for r in read_metrics(f"{tmp}/runs/probe/metrics.jsonl")
                  if "train/loss" in r["metrics"]]
    return {"params_sha256": _digest(model), "train_losses": losses,
            "final_test": {k: float(v) for k, v in final.items()}}


def cpu_models_child() -> dict:
    """Loss (as a hex float) and gradient digest of both reproduction models on one fixed random batch."""
    import equinox as eqx
    import haliax as hax
    import jax
    import jax.numpy as jnp
    import numpy as np

    from common_jax.data.images import ImageExample
    from common_jax.launch import parse_config
    from common_jax.training.classification import classification_loss
    from crate_jax.main import train

    rng = np.random.default_rng(0)
    Batch = hax.Axis("batch", 128)
    images = jnp.asarray(rng.normal(size=(128, 28, 28, 1)), jnp.float32)
    batch = ImageExample(image=hax.named(images, (Batch, "height", "width", "channel")),
                         label=hax.named(jnp.asarray(rng.integers(0, 10, 128), jnp.int32), (Batch,)),
                         weight=hax.ones(Batch))
    out = {}
    for yaml in ("tiny_mnist.yaml", "vit_tiny_mnist.yaml"):
        config = parse_config(train.TrainClassifierConfig, CONFIGS / yaml)
        model = config.model.build(key=jax.random.PRNGKey(0))
        loss_fn = functools.partial(classification_loss, label_smoothing=config.label_smoothing)
        (loss, _), grads = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn, has_aux=True))(model, batch)
        out[yaml] = {"loss": float(loss).hex(), "gradient_sha256": _digest(grads)}
    return out


CHILDREN = {"ops": lambda args: ops_child(),
            "training": lambda args: training_child(args.config, args.steps, args.seed),
            "cpu_models": lambda args: cpu_models_child()}
CHILDREN["seeds"] = CHILDREN["training"]


def run_child(probe: str, setting: Setting, config_name: str, steps: int) -> dict:
    """Run ``probe``'s child under ``setting``: its flags added to ``XLA_FLAGS``, pinned to its CPUs, emulating its
    CPU model, training from its seed."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = " ".join(x for x in (env.get("XLA_FLAGS", ""), setting.flags) if x)
    prefix = ((["taskset", "-c", setting.cpus] if setting.cpus else [])
              + ([QEMU, "-cpu", setting.cpu_model] if setting.cpu_model else []))
    record = {"xla_flags": setting.flags, "taskset": setting.cpus, "emulated_cpu": setting.cpu_model,
              "seed": setting.seed}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [*prefix, sys.executable, __file__, "--child", probe, str(out), "--steps", str(steps),
                   "--seed", str(setting.seed), "--config", config_name]
        completed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            return {**record, "error": completed.stderr[-2000:]}
        return {**record, "result": json.loads(out.read_text())}


def emulated_settings(models: list[str], one_core: bool) -> dict[str, Setting]:
    """Native and emulated settings, each with XLA's default math and with consistent math (and on one CPU)."""
    settings = {}
    for cpu in ["native", *(models if shutil.which(QEMU) else [])]:
        for math, flags in (("default", ""), ("consistent_math", CONSISTENT_MATH)):
            for cpus in (None, "0") if one_core else (None,):
                name = f"{cpu}/{math}" + ("/one_core" if cpus else "")
                settings[name] = Setting(flags, cpus, None if cpu == "native" else cpu)
    return settings


def settings_of(probe: str, args: argparse.Namespace) -> dict[str, Setting]:
    if probe == "training":
        return {name: TRAINING_SETTINGS[name] for name in args.settings}
    if probe == "seeds":
        return {f"seed_{seed}": Setting(seed=seed) for seed in args.seeds}
    return emulated_settings(args.emulate, one_core=probe == "ops")


def cpu_tag(cpu: dict) -> str:
    """``<vendor>_<family>_<model>`` of :func:`timing.cpu_description`'s CPU, e.g. ``amd_25_17``."""
    vendor = (cpu.get("model_name") or "cpu").split()[0].split("(")[0].lower()
    return "_".join([vendor, *(str(x) for x in cpu.get("family_model_stepping", [])[:2])])


def seed_spread(runs: dict[str, dict]) -> dict:
    """Final test accuracy per seed and its mean, sample standard deviation, min and max (in %)."""
    accuracy = {name: 100 * run["result"]["final_test"]["accuracy"] for name, run in runs.items() if "result" in run}
    values = list(accuracy.values())
    return {"test_accuracy_percent": {k: round(v, 2) for k, v in accuracy.items()},
            "mean": round(statistics.mean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else None,
            "min": round(min(values), 2), "max": round(max(values), 2)}


def group(runs: dict[str, dict], key=lambda result: json.dumps(result, sort_keys=True)) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for name, run in runs.items():
        groups.setdefault(key(run["result"]) if "result" in run else f"error {name}", []).append(name)
    return list(groups.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", nargs="+", default=["ops", "training"], choices=list(CHILDREN))
    parser.add_argument("--steps", type=int, default=50, help="training and seeds probes: steps per run")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="training and seeds probes: a configs/crate YAML")
    parser.add_argument("--settings", nargs="+", default=list(TRAINING_SETTINGS), choices=list(TRAINING_SETTINGS),
                        help="training probe: which settings to run (the first is the reference)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds probe: trainer.seed values")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)  # a child's seed
    parser.add_argument("--emulate", nargs="*", default=["Haswell", "EPYC-Milan"],
                        help="qemu CPU models for the ops and cpu_models probes (none: native only)")
    parser.add_argument("--child", nargs=2, metavar=("PROBE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        probe, out = args.child
        Path(out).write_text(json.dumps(CHILDREN[probe](args)))
        return

    training = f"crate_jax.main.train configs/crate/{args.config}, {args.steps} steps"
    for probe in args.probes:
        env = environment()
        runs = {}
        for name, setting in settings_of(probe, args).items():
            runs[name] = run_child(probe, setting, args.config, args.steps)
            print(f"{probe} {name}: {'error' if 'error' in runs[name] else 'done'}", file=sys.stderr, flush=True)
        what = {"ops": "single ops of the tiny CRATE/ViT step on fixed inputs",
                "training": training,
                "seeds": f"{training}, seeds {' '.join(map(str, args.seeds))}",
                "cpu_models": "loss and gradient of tiny_mnist.yaml and vit_tiny_mnist.yaml models on one fixed batch"}
        payload = {"probe": probe, "what": what[probe], "cpu": cpu_description(),
                   "emulation": QEMU if shutil.which(QEMU) else "not available"}
        if probe == "ops":
            names = next((run["result"] for run in runs.values() if "result" in run), {})
            payload["bit_identical_groups_per_op"] = {
                op: group(runs, key=lambda result, op=op: result[op]) for op in names}
            payload["bit_identical_groups"] = group(runs)
        elif probe == "training":
            payload["bit_identical_groups"] = group(runs, key=lambda result: result["params_sha256"])
            first = next(iter(runs.values())).get("result", {}).get("train_losses", [])
            for run in runs.values():
                losses = run.get("result", {}).get("train_losses", [])
                run["first_differing_loss_index"] = next(
                    (i for i, (x, y) in enumerate(zip(losses, first)) if x != y), None)
        elif probe == "seeds":
            payload["final_test_accuracy"] = seed_spread(runs)
        else:
            payload["bit_identical_groups"] = group(runs)
        payload["runs"] = runs
        parts = ["determinism", probe]
        if probe in ("training", "seeds"):
            parts += ([Path(args.config).stem] if args.config != DEFAULT_CONFIG else []) + [f"{args.steps}steps"]
        write_result("_".join([*parts, cpu_tag(payload["cpu"])]), payload, env)


if __name__ == "__main__":
    main()
