"""The reference's HNPS classifier branch (``cls_mode: hnps``): an NFN for the zoo's two-layer ReLU classifier.

The classifier ``x -> fc2(ReLU(fc1(x)))`` keeps its function when its hidden neurons are permuted and positively
rescaled (``fc1`` rows and bias by ``s_j > 0``, ``fc2`` columns by ``1/s_j``). The layers below are equivariant to
that group and the pooling invariant to it. Slots (torch layout, channel axis ``C``): ``w0 [N, C, H, n0]``,
``b0 [N, C, H]``, ``w1 [N, C, n_out, H]``, ``b1 [N, C, n_out]``; ``n0`` (the classifier's input) and ``n_out`` (the
classes) are free indices. Letters: ``m`` output channel, ``n`` input channel, ``j`` hidden neuron, ``k, p, q`` free.

Branch (the reference's defaults): ``HnpsLayer(1 -> c1) -> ReLU -> ... -> HnpsLayer(. -> cL) -> ReLU -> HnpsPool ->
MlpHead``. Initialisation: Xavier-normal per group of terms as the reference (power 1).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .layers import sample_normal, xavier_groups
from .predictor import MlpHead
from .weights import CLASSIFIER_KEYS, ZooWeights


class ClassifierWeights(eqx.Module):
    w0: jax.Array  # [N, C, H, n0]
    b0: jax.Array  # [N, C, H]
    w1: jax.Array  # [N, C, n_out, H]
    b1: jax.Array  # [N, C, n_out]

    @staticmethod
    def of(weights: ZooWeights) -> "ClassifierWeights":
        """The raw classifier of a zoo batch (``C = 1``)."""
        return ClassifierWeights(*(weights.classifier[k][:, None] for k in CLASSIFIER_KEYS))

    def relu(self) -> "ClassifierWeights":
        return jax.tree.map(jax.nn.relu, self)


class HnpsLayer(eqx.Module):
    """Equivariant ``C_in -> C_out`` layer (the reference's ``HNPSLinear`` for two layers)::

        w0' = w0 Φ + b0 ⊗ φ          b0' = Σ_q φ_q w0_{jq} + c b0          (the free input index q mixed)
        w1' = Ψ^T w1                  b1' = Ψ'^T b1 + τ                    (the free class index mixed)
    """

    w0_w0: jax.Array  # [C_out, C_in, n0, n0]
    w0_b0: jax.Array  # [C_out, C_in, n0]
    b0_w0: jax.Array  # [C_out, C_in, n0]
    b0_b0: jax.Array  # [C_out, C_in]
    w1_w1: jax.Array  # [C_out, C_in, n_out, n_out]
    b1_b1: jax.Array  # [C_out, C_in, n_out, n_out]
    b1_bias: jax.Array  # τ: [C_out, n_out]

    @staticmethod
    def init_groups(n0: int, n_out: int, c_in: int, c_out: int):
        """The reference's Xavier groups (fans from each term's weight shape and mask)."""
        return [(1, [("w0_w0", c_in * n0, c_out * n0), ("w0_b0", c_in, c_out * n0)]),
                (1, [("b0_w0", c_in * n0, c_out), ("b0_b0", c_in, c_out)]),
                (1, [("w1_w1", c_in * n_out, c_out * n_out)]),
                (1, [("b1_b1", c_in * n_out, c_out * n_out), ("b1_bias", 0, c_out * n_out)])]

    @staticmethod
    def init(n0: int, n_out: int, c_in: int, c_out: int, *, key, dtype=jnp.float32) -> "HnpsLayer":
        shapes = {"w0_w0": (c_out, c_in, n0, n0), "w0_b0": (c_out, c_in, n0), "b0_w0": (c_out, c_in, n0),
                  "b0_b0": (c_out, c_in), "w1_w1": (c_out, c_in, n_out, n_out), "b1_b1": (c_out, c_in, n_out, n_out),
                  "b1_bias": (c_out, n_out)}
        return HnpsLayer(**sample_normal(key, shapes, xavier_groups(HnpsLayer.init_groups(n0, n_out, c_in, c_out)), dtype))

    def __call__(self, w: ClassifierWeights) -> ClassifierWeights:
        return ClassifierWeights(
            w0=jnp.einsum("mnqk,bnjq->bmjk", self.w0_w0, w.w0) + jnp.einsum("mnk,bnj->bmjk", self.w0_b0, w.b0),
            b0=jnp.einsum("mnq,bnjq->bmj", self.b0_w0, w.w0) + jnp.einsum("mn,bnj->bmj", self.b0_b0, w.b0),
            w1=jnp.einsum("mnpj,bnpk->bmjk", self.w1_w1, w.w1),
            b1=jnp.einsum("mnpj,bnp->bmj", self.b1_b1, w.b1) + self.b1_bias)


def _normalize_channels(x: jax.Array, scale: jax.Array, shift: jax.Array) -> jax.Array:
    """Each entry's channel vector (axis 1) scaled to unit L2 norm (``F.normalize``, eps 1e-12), then ``scale·x + shift``.

    A vector the ReLU zeroed is divided by the eps, with torch's finite gradient (a plain ``sqrt`` would give NaN)."""
    squares = jnp.sum(x * x, axis=1, keepdims=True)
    norm = jnp.where(squares > 0, jnp.sqrt(jnp.where(squares > 0, squares, 1.0)), 0.0)
    x = x / jnp.maximum(norm, 1e-12)
    expand = (slice(None),) + (None,) * (x.ndim - 2)
    return scale[expand] * x + shift[expand]


class HnpsPool(eqx.Module):
    """Invariant pooling (the reference's ``HNPSPool``, mode ``param_mul_L2``): ``[N, C * (n0 + 1 + 2 n_out)]``.

    Channel-normalised ``w0`` averaged over the hidden neurons ``[C, n0]``, channel-normalised ``b0`` averaged ``[C, 1]``,
    channel-normalised ``w1`` averaged over the hidden neurons ``[C, n_out]``, and ``b1`` as it is ``[C, n_out]``;
    flattened channel-major. (The reference also creates an unused normaliser for ``b1``; it is left out.)
    """

    scales: tuple[jax.Array, jax.Array, jax.Array]  # [C] each, for w0, b0, w1; N(0, 1) at init
    shifts: tuple[jax.Array, jax.Array, jax.Array]

    @staticmethod
    def init(channels: int, *, key, dtype=jnp.float32) -> "HnpsPool":
        draws = jax.random.normal(key, (6, channels), dtype)
        return HnpsPool(tuple(draws[:3]), tuple(draws[3:]))

    @staticmethod
    def num_features(channels: int, n0: int, n_out: int) -> int:
        return channels * (n0 + 1 + 2 * n_out)

    def __call__(self, w: ClassifierWeights) -> jax.Array:
        (s0, sb, s1), (t0, tb, t1) = self.scales, self.shifts
        pooled = [_normalize_channels(w.w0, s0, t0).mean(2), _normalize_channels(w.b0, sb, tb).mean(2, keepdims=True),
                  _normalize_channels(w.w1, s1, t1).mean(3), w.b1]
        out = jnp.concatenate(pooled, axis=-1)  # [N, C, n0 + 1 + 2 n_out]
        return out.reshape(out.shape[0], -1)


class HnpsClassifierBranch(eqx.Module):
    """HNPS layers (ReLU after each) -> :class:`HnpsPool` -> :class:`~nfn_jax.predictor.MlpHead`: ``[N, out]``."""

    layers: tuple[HnpsLayer, ...]
    pool: HnpsPool
    head: MlpHead

    @staticmethod
    def init(shapes: tuple[tuple[int, int], tuple[int, int]], input_channels: int, channels: tuple[int, ...],
             head_width: int, out_features: int, *, key, dtype=jnp.float32) -> "HnpsClassifierBranch":
        """``shapes``: ``(fc1.weight, fc2.weight)`` torch shapes; ``channels``: each HNPS layer's output channels."""
        (_, n0), (n_out, _) = shapes
        keys = jax.random.split(key, len(channels) + 2)
        sizes = [input_channels, *channels]
        layers = tuple(HnpsLayer.init(n0, n_out, i, o, key=k, dtype=dtype) for i, o, k in zip(sizes[:-1], sizes[1:], keys))
        return HnpsClassifierBranch(layers, HnpsPool.init(sizes[-1], key=keys[-2], dtype=dtype),
                                    MlpHead.init(HnpsPool.num_features(sizes[-1], n0, n_out), head_width, out_features,
                                                 key=keys[-1]))

    def __call__(self, weights: ZooWeights) -> jax.Array:
        w = ClassifierWeights.of(weights)
        for layer in self.layers:
            w = layer(w).relu()
        return self.head(self.pool(w))
