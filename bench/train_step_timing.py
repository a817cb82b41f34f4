"""Timing of one jitted AdamW train step, shared by the benchmarks in this folder."""

import time

import equinox as eqx
import jax
import optax


def seconds_per_train_step(loss_fn, model, batch, steps: int) -> float:
    """Seconds per jitted AdamW step of ``loss_fn(model, batch) -> scalar``, after two warm-up steps."""
    return time_train_step(loss_fn, model, batch, steps)[0]


def time_train_step(loss_fn, model, batch, steps: int) -> tuple[float, int | None]:
    """(seconds per compiled AdamW step of ``loss_fn(model, batch) -> scalar`` after two warm-up steps, peak bytes:
    the device's peak where the backend reports one, else the memory XLA plans for the compiled step)."""
    optimizer = optax.adamw(1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit(donate="all-except-first")
    def step(batch, model, opt_state):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, batch)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    compiled = step.lower(batch, model, opt_state).compile()
    for _ in range(2):
        model, opt_state, loss = compiled(batch, model, opt_state)
    jax.block_until_ready(loss)
    start = time.perf_counter()
    for _ in range(steps):
        model, opt_state, loss = compiled(batch, model, opt_state)
    jax.block_until_ready(loss)
    return (time.perf_counter() - start) / steps, _peak_bytes(compiled)


def _peak_bytes(compiled) -> int | None:
    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"])
    analysis = compiled.compiled.memory_analysis()
    if analysis is None:
        return None
    return int(analysis.temp_size_in_bytes + analysis.argument_size_in_bytes + analysis.output_size_in_bytes)
