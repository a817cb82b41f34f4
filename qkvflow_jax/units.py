"""Time-dependent units: the hypernetwork that generates one block's weights at depth-time t (spec §1.3, §1.5).

Every generated tensor u has its own two-layer MLP on the shared features phi(t):

    e_u(t) = U2_u SiLU(U1_u phi(t) + c1_u) + c2_u                    (TimeFeat -> TimeHidden -> TimeEmbed)
    W_u(t) = W0_u + sum_j e_{u,j}(t) A_u[j],   b_u(t) = B_u^T e_u(t)  (linear unit)
    LN_u(x; t) = (1 + G_u e_u(t)) * normalise(x) + H_u e_u(t)         (norm unit)

The start is chosen by :class:`HypernetInit` (``model.hyper_init``): ``reference`` (spec §1.5) or ``scaled``
(W(t) at the discrete model's scale). With ``hypernetwork=False`` a unit is static: W0 ~ N(0, std^2), a static
bias b0 = 0 and static LayerNorm gamma0 = 1, beta0 = 0, all trainable (the weight-tied parallel transformer
with the discrete model's start; A = B = G = H = 0).
"""

import math
from dataclasses import dataclass

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import Axis, AxisSpec, NamedArray

TIME_HIDDEN = "time_hidden"
HYPER_INITS = ("reference", "scaled")


def silu_second_moment(variance: float, order: int = 80) -> float:
    """E[SiLU(z)^2] for z ~ N(0, variance), by Gauss-Hermite quadrature (exact to ~1e-12 for variance <= 4)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    z = math.sqrt(variance) * nodes
    silu = z / (1.0 + np.exp(-z))
    return float(np.sum(weights * silu**2) / math.sqrt(2.0 * math.pi))


@dataclass(frozen=True)
class HypernetInit:
    """Standard deviations of the hypernetwork's initial tensors (c1 = c2 = 0 and W0 = 0 in both starts).

    ``reference`` (spec §1.5, the paper's start): U1, U2, A ~ N(0, std^2), B ~ N(0, bias_std^2), G = H = 0.
    At the tiny config this leaves W(t) about 240x below GPT-2's 0.02, so the model starts near the identity map.

    ``scaled`` (W(t), b(t) and the LN modulation at the discrete model's scale). With F = 2K+1 time features and
    d = time_embed_dim:

    - U1 ~ N(0, 1/F): ||phi(t)||^2 = t^2 + K, so each hidden pre-activation z(t) = U1 phi(t) is ~ N(0, v(t)),
      v(t) = (K + t^2)/F, about 1/2; v_bar = (K + 1/3)/F is its mean over t in [0, 1].
    - U2 ~ N(0, 1/(d m2)), m2 = E[SiLU(z)^2] for z ~ N(0, v_bar) (0.159 at v_bar = 1/2): every e_j(t) then has
      unit variance, E[e_j(t)^2] = 1.
    - A ~ N(0, std^2/d): W(t) - W0 = A e(t) has entries of variance std^2 ||e(t)||^2/d, whose expectation is std^2
      (GPT-2's 0.02^2).
    - B ~ N(0, bias_std^2/d): b(t) of scale bias_std (1e-4; the discrete model's biases start at 0).
    - G, H ~ N(0, std^2/d): gamma(t) = 1 + O(std), beta(t) = O(std), so the LN units' time MLPs get a gradient from
      the first step (under ``reference`` G = H = 0 and theirs is exactly zero at step 0).

    The scale holds in expectation over the initialisation; one unit's ||e(t)||^2/d is a sum of d SiLU^2 terms and
    fluctuates around 1 from t to t and from seed to seed, so the standard deviation of one unit's W(t) at one t
    lies between 0.36 and 1.7 x std (5th-95th percentile) at d = 8, K = 8, 0.54-1.5 x at d = 20 and 0.78-1.23 x at
    d = 96 (K = 128).
    """

    u1: float
    u2: float
    a: float
    b: float
    norm: float  # G and H (0: exact zeros)
    static_weight: float  # W0 of a static unit (hypernetwork=False): the discrete model's N(0, std^2)

    @staticmethod
    def of(kind: str, TimeFeat: Axis, TimeEmbed: Axis, std: float = 0.02, bias_std: float = 1e-4) -> "HypernetInit":
        """The initial standard deviations of start ``kind`` (one of HYPER_INITS)."""
        if kind == "reference":
            return HypernetInit(u1=std, u2=std, a=std, b=bias_std, norm=0.0, static_weight=std)
        if kind != "scaled":
            raise ValueError(f"model.hyper_init must be one of {HYPER_INITS}, got {kind!r}")
        F, d = TimeFeat.size, TimeEmbed.size
        num_frequencies = (F - 1) // 2
        m2 = silu_second_moment((num_frequencies + 1.0 / 3.0) / F)
        return HypernetInit(u1=1.0 / math.sqrt(F), u2=1.0 / math.sqrt(d * m2), a=std / math.sqrt(d),
                            b=bias_std / math.sqrt(d), norm=std / math.sqrt(d), static_weight=std)


def _normal(key, axes, std: float) -> NamedArray:
    """N(0, std^2) entries on ``axes``; exact zeros when std is 0."""
    return hax.zeros(axes) if std == 0 else hax.random.normal(key, axes) * std


class TimeEmbeddingMLP(eqx.Module):
    """phi(t) (TimeFeat) -> e(t) (TimeEmbed): U1 (TimeFeat, TimeHidden), c1, U2 (TimeHidden, TimeEmbed), c2."""

    U1: NamedArray
    c1: NamedArray
    U2: NamedArray
    c2: NamedArray

    @staticmethod
    def init(TimeFeat: Axis, TimeEmbed: Axis, init: HypernetInit, *, key) -> "TimeEmbeddingMLP":
        TimeHidden = TimeEmbed.alias(TIME_HIDDEN)
        k1, k2 = jax.random.split(key)
        return TimeEmbeddingMLP(
            U1=hax.random.normal(k1, (TimeFeat, TimeHidden)) * init.u1,
            c1=hax.zeros(TimeHidden),
            U2=hax.random.normal(k2, (TimeHidden, TimeEmbed)) * init.u2,
            c2=hax.zeros(TimeEmbed),
        )

    def __call__(self, phi: NamedArray) -> NamedArray:
        """e(t) for phi with axis TimeFeat (cast to the weights' dtype after being built in f32 or wider)."""
        phi = phi.astype(self.U1.dtype)
        hidden = hax.nn.silu(hax.dot(phi, self.U1, axis=self.U1.axes[0]) + self.c1)
        return hax.dot(hidden, self.U2, axis=TIME_HIDDEN) + self.c2


class TimeDependentLinear(eqx.Module):
    """y = x W(t) + b(t): W0 (In, Out), A (TimeEmbed, In, Out), B (TimeEmbed, Out) or None (bias-free unit).

    A static unit (``time_mlp`` None) has y = x W0 + b0 with a trainable bias b0 (Out) (None when bias-free).
    """

    W0: NamedArray
    b0: NamedArray | None
    A: NamedArray | None
    B: NamedArray | None
    time_mlp: TimeEmbeddingMLP | None
    In: AxisSpec = eqx.field(static=True)
    Out: AxisSpec = eqx.field(static=True)

    @staticmethod
    def init(In: AxisSpec, Out: AxisSpec, TimeFeat: Axis, TimeEmbed: Axis, init: HypernetInit, *, key,
             use_bias: bool = True, hypernetwork: bool = True) -> "TimeDependentLinear":
        in_axes, out_axes = hax.axis.ensure_tuple(In), hax.axis.ensure_tuple(Out)
        k_mlp, k_a, k_b = jax.random.split(key, 3)  # independent keys for A and B (fix F9)
        if not hypernetwork:
            W0 = hax.random.normal(k_a, in_axes + out_axes) * init.static_weight
            return TimeDependentLinear(W0, hax.zeros(out_axes) if use_bias else None, None, None, None, In, Out)
        A = hax.random.normal(k_a, (TimeEmbed,) + in_axes + out_axes) * init.a
        B = hax.random.normal(k_b, (TimeEmbed,) + out_axes) * init.b if use_bias else None
        return TimeDependentLinear(hax.zeros(in_axes + out_axes), None, A, B,
                                   TimeEmbeddingMLP.init(TimeFeat, TimeEmbed, init, key=k_mlp), In, Out)

    def weight_and_bias(self, phi: NamedArray) -> tuple[NamedArray, NamedArray | None]:
        """(W(t), b(t)) for the time features phi (axis TimeFeat); b is None for a bias-free unit."""
        if self.time_mlp is None:
            return self.W0, self.b0
        e = self.time_mlp(phi)
        weight = self.W0 + hax.dot(e, self.A, axis=e.axes[0])
        bias = hax.dot(e, self.B, axis=e.axes[0]) if self.B is not None else None
        return weight, bias


class TimeDependentNorm(eqx.Module):
    """Scale and shift of a time-dependent LayerNorm/RMSNorm: gamma(t) = 1 + G e(t), beta(t) = H e(t).

    G, H: (Embed, TimeEmbed) (zero at init under ``hyper_init: reference``, so gamma = 1 and beta = 0 for every
    t). ``H`` is None for an RMSNorm without time bias (``rmsnorm_time_bias: false``). A static norm
    (``time_mlp`` None) has trainable gamma0 = 1 and beta0 = 0 (Embed) instead (beta0 None without time bias).
    """

    G: NamedArray | None
    H: NamedArray | None
    time_mlp: TimeEmbeddingMLP | None
    gamma0: NamedArray | None
    beta0: NamedArray | None
    Embed: Axis = eqx.field(static=True)

    @staticmethod
    def init(Embed: Axis, TimeFeat: Axis, TimeEmbed: Axis, init: HypernetInit, *, key, hypernetwork: bool = True,
             time_bias: bool = True) -> "TimeDependentNorm":
        if not hypernetwork:
            return TimeDependentNorm(None, None, None, hax.ones(Embed), hax.zeros(Embed) if time_bias else None,
                                     Embed)
        k_g, k_h = jax.random.split(jax.random.fold_in(key, 1))  # the time MLP keeps ``key`` itself
        G = _normal(k_g, (Embed, TimeEmbed), init.norm)
        H = _normal(k_h, (Embed, TimeEmbed), init.norm) if time_bias else None
        return TimeDependentNorm(G, H, TimeEmbeddingMLP.init(TimeFeat, TimeEmbed, init, key=key), None, None, Embed)

    def scale_and_shift(self, phi: NamedArray) -> tuple[NamedArray, NamedArray]:
        """(gamma(t), beta(t)), each with axis Embed."""
        if self.time_mlp is None:
            beta = self.beta0 if self.beta0 is not None else hax.zeros(self.Embed, dtype=self.gamma0.dtype)
            return self.gamma0, beta
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
