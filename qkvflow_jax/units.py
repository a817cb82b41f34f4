"""Time-dependent units: the hypernetwork that generates one block's weights at depth-time t (spec §1.3, §1.5).

Every generated tensor u has its own two-layer MLP on the shared features phi(t):

    e_u(t) = U2_u SiLU(U1_u phi(t) + c1_u) + c2_u                    (TimeFeat -> TimeHidden -> TimeEmbed)
    W_u(t) = W0_u + sum_j e_{u,j}(t) A_u[j],   b_u(t) = B_u^T e_u(t)  (linear unit)
    LN_u(x; t) = (1 + G_u e_u(t)) * normalise(x) + H_u e_u(t)         (norm unit)

Initialisation is set here explicitly (spec §1.5): U1, U2, A ~ N(0, 0.02^2); c1, c2, W0 = 0; B ~ 1e-4 N(0, 1);
G, H = 0. With ``hypernetwork=False`` a unit keeps only W0 (a weight-tied parallel transformer, A = B = 0).
"""

import math

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
from haliax import Axis, AxisSpec, NamedArray

TIME_HIDDEN = "time_hidden"


class TimeEmbeddingMLP(eqx.Module):
    """phi(t) (TimeFeat) -> e(t) (TimeEmbed): U1 (TimeFeat, TimeHidden), c1, U2 (TimeHidden, TimeEmbed), c2."""

    U1: NamedArray
    c1: NamedArray
    U2: NamedArray
    c2: NamedArray

    @staticmethod
    def init(TimeFeat: Axis, TimeEmbed: Axis, *, key, std: float = 0.02) -> "TimeEmbeddingMLP":
        TimeHidden = TimeEmbed.alias(TIME_HIDDEN)
        k1, k2 = jax.random.split(key)
        return TimeEmbeddingMLP(
            U1=hax.random.normal(k1, (TimeFeat, TimeHidden)) * std,
            c1=hax.zeros(TimeHidden),
            U2=hax.random.normal(k2, (TimeHidden, TimeEmbed)) * std,
            c2=hax.zeros(TimeEmbed),
        )

    def __call__(self, phi: NamedArray) -> NamedArray:
        """e(t) for phi with axis TimeFeat (cast to the weights' dtype after being built in f32 or wider)."""
        phi = phi.astype(self.U1.dtype)
        hidden = hax.nn.silu(hax.dot(phi, self.U1, axis=self.U1.axes[0]) + self.c1)
        return hax.dot(hidden, self.U2, axis=TIME_HIDDEN) + self.c2


class TimeDependentLinear(eqx.Module):
    """y = x W(t) + b(t): W0 (In, Out), A (TimeEmbed, In, Out), B (TimeEmbed, Out) or None (bias-free unit)."""

    W0: NamedArray
    A: NamedArray | None
    B: NamedArray | None
    time_mlp: TimeEmbeddingMLP | None
    In: AxisSpec = eqx.field(static=True)
    Out: AxisSpec = eqx.field(static=True)

    @staticmethod
    def init(In: AxisSpec, Out: AxisSpec, TimeFeat: Axis, TimeEmbed: Axis, *, key, use_bias: bool = True,
             hypernetwork: bool = True, std: float = 0.02, bias_std: float = 1e-4) -> "TimeDependentLinear":
        in_axes, out_axes = hax.axis.ensure_tuple(In), hax.axis.ensure_tuple(Out)
        W0 = hax.zeros(in_axes + out_axes)
        if not hypernetwork:
            return TimeDependentLinear(W0, None, None, None, In, Out)
        k_mlp, k_a, k_b = jax.random.split(key, 3)  # independent keys for A and B (fix F9)
        A = hax.random.normal(k_a, (TimeEmbed,) + in_axes + out_axes) * std
        B = hax.random.normal(k_b, (TimeEmbed,) + out_axes) * bias_std if use_bias else None
        return TimeDependentLinear(W0, A, B, TimeEmbeddingMLP.init(TimeFeat, TimeEmbed, key=k_mlp, std=std), In, Out)

    def weight_and_bias(self, phi: NamedArray) -> tuple[NamedArray, NamedArray | None]:
        """(W(t), b(t)) for the time features phi (axis TimeFeat); b is None for a bias-free unit."""
        if self.time_mlp is None:
            return self.W0, None
        e = self.time_mlp(phi)
        weight = self.W0 + hax.dot(e, self.A, axis=e.axes[0])
        bias = hax.dot(e, self.B, axis=e.axes[0]) if self.B is not None else None
        return weight, bias


class TimeDependentNorm(eqx.Module):
    """Scale and shift of a time-dependent LayerNorm/RMSNorm: gamma(t) = 1 + G e(t), beta(t) = H e(t).

    G, H: (Embed, TimeEmbed), zero at init so gamma = 1 and beta = 0 for every t. ``H`` is None for an RMSNorm
    without time bias (``rmsnorm_time_bias: false``).
    """

    G: NamedArray | None
    H: NamedArray | None
    time_mlp: TimeEmbeddingMLP | None
    Embed: Axis = eqx.field(static=True)

    @staticmethod
    def init(Embed: Axis, TimeFeat: Axis, TimeEmbed: Axis, *, key, hypernetwork: bool = True,
             time_bias: bool = True, std: float = 0.02) -> "TimeDependentNorm":
        if not hypernetwork:
            return TimeDependentNorm(None, None, None, Embed)
        H = hax.zeros((Embed, TimeEmbed)) if time_bias else None
        return TimeDependentNorm(hax.zeros((Embed, TimeEmbed)), H, TimeEmbeddingMLP.init(TimeFeat, TimeEmbed, key=key,
                                                                                          std=std), Embed)

    def scale_and_shift(self, phi: NamedArray) -> tuple[NamedArray, NamedArray]:
        """(gamma(t), beta(t)), each with axis Embed."""
        if self.time_mlp is None:
            return hax.ones(self.Embed), hax.zeros(self.Embed)
        e = self.time_mlp(phi)
        gamma = 1.0 + hax.dot(self.G, e, axis=e.axes[0])
        beta = hax.dot(self.H, e, axis=e.axes[0]) if self.H is not None else hax.zeros(self.Embed, dtype=gamma.dtype)
        return gamma, beta


def layer_norm(x: NamedArray, Embed: Axis, gamma: NamedArray, beta: NamedArray, eps: float) -> NamedArray:
    """gamma * (x - mean) / sqrt(var + eps) + beta over Embed (the LN unit of spec §1.3)."""
    mean = hax.mean(x, axis=Embed)
    var = hax.mean(hax.square(x - mean), axis=Embed)
    return gamma * (x - mean) * hax.rsqrt(var + eps) + beta


def rms_norm(x: NamedArray, Embed: Axis, gamma: NamedArray, beta: NamedArray, eps: float) -> NamedArray:
    """gamma * x / sqrt(mean(x^2) + eps) + beta over Embed (the Llama variant's RMSNorm unit, spec §1.8)."""
    ms = hax.mean(hax.square(x), axis=Embed)
    return gamma * x * hax.rsqrt(ms + eps) + beta


def apply_linear(x: NamedArray, weight: NamedArray, bias: NamedArray | None, In: AxisSpec) -> NamedArray:
    """x W + b, contracting the axes In."""
    y = hax.dot(x, weight, axis=In)
    return y + bias if bias is not None else y


def count_parameters(tree) -> int:
    """Number of scalars in the inexact arrays of a pytree (works on abstract ShapeDtypeStructs)."""
    leaves = jax.tree.leaves(eqx.filter(tree, lambda x: hasattr(x, "shape") and jnp.issubdtype(x.dtype, jnp.inexact)))
    return sum(math.prod(leaf.shape) for leaf in leaves)
