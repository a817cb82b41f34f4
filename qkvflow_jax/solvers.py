"""Integrating dX/dt = F(X, t) over depth-time [0, 1] (spec §1.4, §7.1).

- ``euler_scan`` (default, the reference's fast path): explicit Euler on a given grid, evaluating F at the
  right end of each interval (discretise-then-optimise). :func:`euler_fold` folds over block weights generated
  for every step beforehand (``weight_generation: batched``, the default, and the discretised transformer);
  :func:`euler_scan` generates them inside each rematerialised step, so again in the backward pass
  (``weight_generation: per_step``, as the reference).
- diffrax: ``euler`` (ConstantStepSize, dt0 = 1/L, field (t, x) -> F(x, t + dt0): the right endpoint, equal to
  ``euler_scan``), ``heun``, ``tsit5``, ``dopri5`` with constant steps or a PID controller, and a configurable
  adjoint. diffrax solvers need a deterministic field: dropout is never applied on that path.
"""

import logging
from dataclasses import dataclass

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import haliax as hax

logger = logging.getLogger(__name__)

SOLVERS = ("euler_scan", "euler", "heun", "tsit5", "dopri5")
ADJOINTS = ("recursive_checkpoint", "backsolve", "direct")
_DIFFRAX_SOLVERS = {"euler": diffrax.Euler, "heun": diffrax.Heun, "tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5}


@dataclass(frozen=True)
class SolverConfig:
    """``solver``: one of SOLVERS. ``adaptive``: PID step control with ``rtol``/``atol`` (heun/tsit5/dopri5
    only), else constant steps of 1/num_layers. ``adjoint``: how diffrax differentiates the solve."""

    name: str = "euler_scan"
    adaptive: bool = False
    rtol: float = 1e-3
    atol: float = 1e-6
    max_steps: int = 4096
    adjoint: str = "recursive_checkpoint"

    def __post_init__(self):
        if self.name not in SOLVERS:
            raise ValueError(f"model.solver.name must be one of {SOLVERS}, got {self.name!r}")
        if self.adjoint not in ADJOINTS:
            raise ValueError(f"model.solver.adjoint must be one of {ADJOINTS}, got {self.adjoint!r}")
        if self.adaptive and self.name in ("euler_scan", "euler"):
            raise ValueError(f"model.solver.adaptive needs an embedded error estimate; {self.name!r} has none")
        if self.rtol <= 0 or self.atol <= 0 or self.max_steps < 1:
            raise ValueError("model.solver.rtol/atol must be > 0 and model.solver.max_steps >= 1")

    @property
    def uses_diffrax(self) -> bool:
        return self.name != "euler_scan"


def euler_scan(field, x0, tau, dt, keys=None, *, checkpoint: bool = True):
    """X_{i+1} = X_i + dt_i F(X_i, tau_i) for i = 0..len(tau)-1; ``field(x, t, key)``; keys: (n, 2) or None."""

    def step(x, inputs):
        tau_i, dt_i, key_i = inputs
        return x + field(x, tau_i, key_i) * dt_i.astype(x.dtype), None

    if checkpoint:
        step = jax.checkpoint(step)
    x, _ = jax.lax.scan(step, x0, (tau, dt, keys))
    return x


def euler_fold(block, x0, weights, dt, keys=None, *, Steps, checkpoint: bool = True):
    """X_{i+1} = X_i + dt_i block(X_i, weights_i, key_i) over the named axis ``Steps`` of the stacked ``weights``.

    ``dt``: (n,) step sizes; ``keys``: (n, 2) dropout keys or None. Each step is rematerialised when
    ``checkpoint``; the weights are inputs of the loop, so nothing is regenerated in the backward pass."""

    def step(x, w, dt_i, key_i):
        return x + block(x, w, key_i) * dt_i.astype(x.dtype)

    return hax.fold(step, Steps, remat=checkpoint)(x0, weights, dt, keys)


class _Field(eqx.Module):
    """diffrax's view of the vector field: (t, y, args) -> F(y, t + shift) on the raw array of the NamedArray
    state (axes ``axes``), the model passed as ``args`` so that every adjoint sees its parameters."""

    shift: float = eqx.field(static=True)
    axes: tuple = eqx.field(static=True)

    def __call__(self, t, y, args):
        field, mask = args
        x = hax.named(y, self.axes)
        return field(x, t + self.shift, mask, None).astype(y.dtype).array


def _adjoint(name: str):
    return {"recursive_checkpoint": diffrax.RecursiveCheckpointAdjoint, "backsolve": diffrax.BacksolveAdjoint,
            "direct": diffrax.DirectAdjoint}[name]()


def diffrax_solve(field, x0, mask, num_steps: int, solver: SolverConfig):
    """X(1) from X(0) = ``x0`` with diffrax; ``field(x, t, mask, key)`` is an equinox module. Returns (X(1), steps).

    Constant-step solvers use dt0 = 1/num_steps; ``euler`` shifts t by dt0 to evaluate at the right endpoint.
    Adaptive solvers integrate the continuous field on [0, 1] in float32 or wider.
    """
    dt0 = 1.0 / num_steps
    shift = dt0 if solver.name == "euler" else 0.0
    if solver.adaptive:
        controller = diffrax.PIDController(rtol=solver.rtol, atol=solver.atol)
        y0 = x0.array.astype(jnp.promote_types(x0.dtype, jnp.float32))
        logger.warning("adaptive %s solve: time_scale makes the field oscillate at up to time_scale rad per unit "
                       "t, which can cost many steps", solver.name)
    else:
        controller, y0 = diffrax.ConstantStepSize(), x0.array
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_Field(shift, tuple(x0.axes))), _DIFFRAX_SOLVERS[solver.name](), t0=0.0, t1=1.0, dt0=dt0, y0=y0,
        args=(field, mask), stepsize_controller=controller, adjoint=_adjoint(solver.adjoint),
        max_steps=max(solver.max_steps, num_steps + 1), saveat=diffrax.SaveAt(t1=True),
    )
    return hax.named(sol.ys[0].astype(x0.dtype), x0.axes), sol.stats["num_steps"]
