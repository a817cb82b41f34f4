"""Spec §9 tests 9 (gradients in f64) and 10 (diffrax agreement, O(1/L) convergence)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from qkvflow_jax import SolverConfig

from .tiny import activations, build, max_abs_diff, small_config, token_ids


def _loss(model, ids):
    return jnp.mean(model(ids).array ** 2)


def test_gradients_match_finite_differences_f64():
    with jax.enable_x64(True):
        model = build(small_config(num_layers=3))
        ids = token_ids()
        params, static = eqx.partition(model, eqx.is_inexact_array)
        loss = jax.jit(lambda p: _loss(eqx.combine(p, static), ids))
        check_grads(loss, (params,), order=1, modes=["rev"], atol=1e-7, rtol=1e-5, eps=1e-6)
        grads = jax.jit(jax.grad(loss))(params)
        eps = 1e-6
        picks = [(lambda p: p.field.fc.A.array, (1, 2, 3)), (lambda p: p.field.qkv.W0.array, (4, 1, 0, 2)),
                 (lambda p: p.field.proj.time_mlp.U1.array, (2, 1)), (lambda p: p.field.ln_mlp.G.array, (5, 0))]
        for where, index in picks:
            def shifted(delta):
                return eqx.tree_at(where, params, where(params).at[index].add(delta))
            numeric = (loss(shifted(eps)) - loss(shifted(-eps))) / (2 * eps)
            analytic = where(grads)[index]
            assert abs(float(numeric - analytic)) <= 1e-6 * max(1.0, abs(float(analytic))), (index, numeric, analytic)


def test_diffrax_euler_equals_scan_f64():
    with jax.enable_x64(True):
        model = build(small_config())
        ids = token_ids()
        # same seed, same structure: the same weights, integrated by diffrax
        diffrax_euler = build(small_config(solver=SolverConfig(name="euler")))
        assert max_abs_diff(activations(model, ids), activations(diffrax_euler, ids)) < 1e-12


def test_euler_converges_at_first_order_to_dopri5():
    with jax.enable_x64(True):
        model = build(small_config(time_scale=1.0), std=0.1)
        ids = token_ids()
        dopri5 = SolverConfig(name="dopri5", adaptive=True, rtol=1e-10, atol=1e-10)
        reference = activations(build(small_config(time_scale=1.0, solver=dopri5), std=0.1), ids)
        steps = np.array([4, 8, 16, 32, 64])
        errors = np.array([max_abs_diff(activations(model, ids, int(n)), reference) for n in steps])
        slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
        assert -1.2 < slope < -0.8, (slope, errors)
        constant_heun = build(small_config(time_scale=1.0, solver=SolverConfig(name="heun")), std=0.1)
        assert max_abs_diff(activations(constant_heun, ids), reference) < errors[0]


def test_batched_weight_generation_equals_per_step_f64():
    """``weight_generation: batched`` (W(tau_i) for every step before the loop) and ``per_step`` (inside each
    rematerialised step, the reference's loop) are the same function with the same gradients, dropout included."""
    with jax.enable_x64(True):
        ids = token_ids()
        models = {kind: build(small_config(weight_generation=kind, resid_pdrop=0.1))
                  for kind in ("batched", "per_step")}
        key = jax.random.PRNGKey(7)
        outs, grads = {}, {}
        for kind, model in models.items():
            params, static = eqx.partition(model, eqx.is_inexact_array)
            loss = jax.jit(lambda p, s=static: jnp.mean(eqx.combine(p, s)(ids, key=key).array ** 2))
            outs[kind], grads[kind] = loss(params), jax.jit(jax.grad(loss))(params)
        assert abs(float(outs["batched"] - outs["per_step"])) < 1e-12
        flat = [jax.tree.leaves(grads[kind]) for kind in ("batched", "per_step")]
        assert len(flat[0]) == len(flat[1]) and all(max_abs_diff(a, b) < 1e-12 for a, b in zip(*flat))
        assert max(float(jnp.max(jnp.abs(g))) for g in flat[0]) > 1e-6
