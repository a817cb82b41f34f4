"""A compiled AdamW train step packaged as one unit of work for :func:`timing.interleaved`.

Shared by the train-step benchmarks in this folder (ViT, CRATE, DiffEqFormer against their baselines).
"""

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import optax


@dataclass
class TrainStepWork:
    """``run()`` performs ``steps`` compiled AdamW steps of ``loss_fn(model, batch) -> scalar`` and blocks until
    they are done; ``peak_bytes`` is the device's peak where the backend reports one, else the memory XLA plans
    for the compiled step."""

    run: Callable[[], None]
    steps: int
    peak_bytes: int | None


def train_step_work(loss_fn, model, batch, steps: int, learning_rate: float = 1e-3,
                    compiler_options: dict[str, str | bool] | None = None) -> TrainStepWork:
    """Compile one AdamW step (``donate="all-except-first"``) and return it as a unit of ``steps`` steps.

    The model and optimizer state carry over from call to call, as in training; compilation happens here, so
    ``timing.interleaved``'s warm-up calls only run steps. ``compiler_options`` are XLA debug options for this
    compilation only (e.g. ``{"xla_cpu_enable_platform_dependent_math": False}``), so two variants of one step
    can be timed in the same process. The step donates its own copy of ``model``; the caller's stays usable."""
    optimizer = optax.adamw(learning_rate)
    model = jax.tree.map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, model)
    state = {"model": model, "opt_state": optimizer.init(eqx.filter(model, eqx.is_inexact_array))}

    @eqx.filter_jit(donate="all-except-first")
    def step(batch, model, opt_state):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, batch)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    compiled = step.lower(batch, state["model"], state["opt_state"]).compile(compiler_options)

    def run() -> None:
        loss = None
        for _ in range(steps):
            state["model"], state["opt_state"], loss = compiled(batch, state["model"], state["opt_state"])
        jax.block_until_ready(loss)

    run()
    return TrainStepWork(run, steps, _peak_bytes(compiled))


def _peak_bytes(compiled) -> int | None:
    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"])
    analysis = compiled.compiled.memory_analysis()
    if analysis is None:
        return None
    return int(analysis.temp_size_in_bytes + analysis.argument_size_in_bytes + analysis.output_size_in_bytes)
