"""Equivariant layer E, slot ReLU and invariant layer I of the Transformer-NFN (nfn.md §3-4).

All inputs are :class:`~nfn_jax.weights.BlockWeights` with slots ``[N, C_in, ...]``. Index letters in the einsums:
``n`` model, ``e`` output channel, ``d`` input channel, ``s`` head, ``p, q`` free D indices (rows of ``[QK]``,
``[VO]`` and W_Q/W_K/W_V; columns of W_B/b_B), ``j`` an index permuted by ``P_O`` or ``P_A`` (kept aligned with
the output), ``k`` the second output index. Every term has its own coefficient tensor ``[C_out, C_in, ...]``;
the heads share them. A bullet in the spec (a summed index) is a ``sum`` here.
"""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .weights import BlockWeights, WeightSpaceSpec

MLP_SLOTS = ("a", "ba", "b", "bb")


def _normal(key, shape, fan_in: int, fan_out: int, power: int, dtype):
    """``N(0, σ²)`` with ``σ = (2 / (fan_in + fan_out))^{power/2}`` (nfn.md §4, init)."""
    return (2.0 / (fan_in + fan_out)) ** (power / 2) * jax.random.normal(key, shape, dtype)


def _init_group(key, shapes: dict[str, tuple[int, ...]], c_in: int, c_out: int, power: int, dtype) -> dict[str, jax.Array]:
    """Coefficients of one output slot: fan_in sums the contracted sizes of every term feeding it.

    One normal draw for the whole group, cut into the terms (few random ops: fast to compile).
    """
    fan_in = c_in * sum(math.prod(s) for s in shapes.values())
    sizes = [c_out * c_in * math.prod(s) for s in shapes.values()]
    flat = _normal(key, (sum(sizes),), fan_in, c_out, power, dtype)
    offsets = [0, *itertools.accumulate(sizes)]
    return {name: flat[lo:hi].reshape(c_out, c_in, *s) for (name, s), lo, hi in zip(shapes.items(), offsets, offsets[1:])}


class _Stats(eqx.Module):
    """Pooled quantities of one block's input that several slots read (per input channel)."""

    qk: jax.Array  # [N, C, D, D]
    vo: jax.Array  # [N, C, D, D]
    vo_rows: jax.Array  # [VO]_{p•}: [N, C, D]
    a_all: jax.Array  # A_••: [N, C]
    a_rows: jax.Array  # A_{j•}: [N, C, D]
    a_cols: jax.Array  # A_{•k}: [N, C, D_A]
    b_cols: jax.Array  # B_{•q}: [N, C, D]
    ba_all: jax.Array  # a_•: [N, C]

    @staticmethod
    def of(w: BlockWeights) -> "_Stats":
        vo = w.vo()
        return _Stats(qk=w.qk(), vo=vo, vo_rows=vo.sum(-1), a_all=w.a.sum((-2, -1)), a_rows=w.a.sum(-1),
                      a_cols=w.a.sum(-2), b_cols=w.b.sum(-2), ba_all=w.ba.sum(-1))


class EquivariantLayer(eqx.Module):
    """``E: C_in -> C_out`` channels of one block's weights; ``E(g·W) = g·E(W)`` for every g (nfn.md §3).

    Parameter count for ``C_in=1, C_out=10, D=32, D_A=64``: 783,820.
    """

    phi_q: jax.Array  # [C_out, C_in, D, D]
    phi_k: jax.Array
    phi_v: jax.Array
    o_pool: jax.Array  # α: [C_out, C_in]
    o_self: jax.Array  # β: [C_out, C_in]
    coef_a: dict[str, jax.Array]
    coef_ba: dict[str, jax.Array]
    coef_b: dict[str, jax.Array]
    coef_bb: dict[str, jax.Array]
    bias_a: jax.Array  # [C_out]
    bias_ba: jax.Array  # [C_out]
    bias_b: jax.Array  # [C_out, D]
    bias_bb: jax.Array  # [C_out, D]

    @staticmethod
    def init(spec: WeightSpaceSpec, c_in: int, c_out: int, *, key, dtype=jnp.float32) -> "EquivariantLayer":
        D = spec.D
        kq, ko, ka, kba, kb, kbb = jax.random.split(key, 6)
        scalar = ()
        phi_q, phi_k, phi_v = _normal(kq, (3, c_out, c_in, D, D), c_in * D, c_out, 1, dtype)
        o_coefs = _init_group(ko, {"pool": scalar, "self": scalar}, c_in, c_out, 1, dtype)
        coef_a = _init_group(ka, {"qk": (D, D), "vo_pool": (D,), "vo_row": (D,), "a_all": scalar, "a_row": scalar,
                                  "a_col": scalar, "a_self": scalar, "b_pool": (D,), "b_row": (D,), "ba_all": scalar,
                                  "ba_self": scalar, "bb": (D,)}, c_in, c_out, 2, dtype)
        coef_ba = _init_group(kba, {"qk": (D, D), "vo_pool": (D,), "a_all": scalar, "a_col": scalar, "b_pool": (D,),
                                    "b_row": (D,), "ba_all": scalar, "ba_self": scalar, "bb": (D,)}, c_in, c_out, 2, dtype)
        coef_b = _init_group(kb, {"qk": (D, D, D), "vo_pool": (D, D), "a_all": (D,), "a_col": (D,), "b_pool": (D, D),
                                  "b_self": (D, D), "ba_all": (D,), "ba_self": (D,), "bb": (D, D)}, c_in, c_out, 2, dtype)
        coef_bb = _init_group(kbb, {"qk": (D, D, D), "vo_pool": (D, D), "a_all": (D,), "b_pool": (D, D),
                                    "ba_all": (D,), "bb": (D, D)}, c_in, c_out, 2, dtype)
        return EquivariantLayer(
            phi_q=phi_q, phi_k=phi_k, phi_v=phi_v, o_pool=o_coefs["pool"], o_self=o_coefs["self"],
            coef_a=coef_a, coef_ba=coef_ba, coef_b=coef_b, coef_bb=coef_bb,
            bias_a=jnp.zeros((c_out,), dtype), bias_ba=jnp.zeros((c_out,), dtype),
            bias_b=jnp.zeros((c_out, D), dtype), bias_bb=jnp.zeros((c_out, D), dtype),
        )

    def __call__(self, w: BlockWeights) -> BlockWeights:
        st = _Stats.of(w)
        return BlockWeights(
            q=jnp.einsum("edjp,ndspk->nesjk", self.phi_q, w.q),  # Φ^Q W_Q^s
            k=jnp.einsum("edjp,ndspk->nesjk", self.phi_k, w.k),
            v=jnp.einsum("edjp,ndspk->nesjk", self.phi_v, w.v),
            o=jnp.einsum("ed,ndsj->nesj", self.o_pool, w.o.sum(-1))[..., None]  # α (W_O)_{j•}
            + jnp.einsum("ed,ndsjk->nesjk", self.o_self, w.o),  # β W_O
            a=self._a(w, st), ba=self._ba(w, st), b=self._b(w, st), bb=self._bb(w, st),
        )

    def _a(self, w: BlockWeights, st: _Stats) -> jax.Array:
        """E_A [N, C_out, D, D_A], 13 terms (nfn.md §3)."""
        c = self.coef_a
        scalar = (jnp.einsum("edpq,ndpq->ne", c["qk"], st.qk) + jnp.einsum("edp,ndp->ne", c["vo_pool"], st.vo_rows)
                  + jnp.einsum("ed,nd->ne", c["a_all"], st.a_all) + jnp.einsum("edq,ndq->ne", c["b_pool"], st.b_cols)
                  + jnp.einsum("ed,nd->ne", c["ba_all"], st.ba_all) + jnp.einsum("edq,ndq->ne", c["bb"], w.bb) + self.bias_a)
        rows = jnp.einsum("edp,ndpj->nej", c["vo_row"], st.vo) + jnp.einsum("ed,ndj->nej", c["a_row"], st.a_rows)  # depend on j
        cols = (jnp.einsum("ed,ndk->nek", c["a_col"], st.a_cols) + jnp.einsum("edq,ndkq->nek", c["b_row"], w.b)
                + jnp.einsum("ed,ndk->nek", c["ba_self"], w.ba))  # depend on k
        full = jnp.einsum("ed,ndjk->nejk", c["a_self"], w.a)
        return full + scalar[:, :, None, None] + rows[..., None] + cols[:, :, None, :]

    def _ba(self, w: BlockWeights, st: _Stats) -> jax.Array:
        """E_bA [N, C_out, D_A], 10 terms."""
        c = self.coef_ba
        scalar = (jnp.einsum("edpq,ndpq->ne", c["qk"], st.qk) + jnp.einsum("edp,ndp->ne", c["vo_pool"], st.vo_rows)
                  + jnp.einsum("ed,nd->ne", c["a_all"], st.a_all) + jnp.einsum("edq,ndq->ne", c["b_pool"], st.b_cols)
                  + jnp.einsum("ed,nd->ne", c["ba_all"], st.ba_all) + jnp.einsum("edq,ndq->ne", c["bb"], w.bb) + self.bias_ba)
        per_k = (jnp.einsum("ed,ndk->nek", c["a_col"], st.a_cols) + jnp.einsum("edq,ndkq->nek", c["b_row"], w.b)
                 + jnp.einsum("ed,ndk->nek", c["ba_self"], w.ba))
        return per_k + scalar[..., None]

    def _b(self, w: BlockWeights, st: _Stats) -> jax.Array:
        """E_B [N, C_out, D_A, D] (j hidden neuron, k free output coordinate), 10 terms."""
        c = self.coef_b
        per_k = (jnp.einsum("edkpq,ndpq->nek", c["qk"], st.qk) + jnp.einsum("edkp,ndp->nek", c["vo_pool"], st.vo_rows)
                 + jnp.einsum("edk,nd->nek", c["a_all"], st.a_all) + jnp.einsum("edkq,ndq->nek", c["b_pool"], st.b_cols)
                 + jnp.einsum("edk,nd->nek", c["ba_all"], st.ba_all) + jnp.einsum("edkq,ndq->nek", c["bb"], w.bb)
                 + self.bias_b)
        per_jk = (jnp.einsum("edk,ndj->nejk", c["a_col"], st.a_cols) + jnp.einsum("edkq,ndjq->nejk", c["b_self"], w.b)
                  + jnp.einsum("edk,ndj->nejk", c["ba_self"], w.ba))
        return per_jk + per_k[:, :, None, :]

    def _bb(self, w: BlockWeights, st: _Stats) -> jax.Array:
        """E_bB [N, C_out, D], 7 terms."""
        c = self.coef_bb
        return (jnp.einsum("edkpq,ndpq->nek", c["qk"], st.qk) + jnp.einsum("edkp,ndp->nek", c["vo_pool"], st.vo_rows)
                + jnp.einsum("edk,nd->nek", c["a_all"], st.a_all) + jnp.einsum("edkq,ndq->nek", c["b_pool"], st.b_cols)
                + jnp.einsum("edk,nd->nek", c["ba_all"], st.ba_all) + jnp.einsum("edkq,ndq->nek", c["bb"], w.bb)
                + self.bias_bb)


def relu_mlp_slots(w: BlockWeights) -> BlockWeights:
    """ReLU on ``W_A, b_A, W_B, b_B`` only; Q/K/V/O pass unchanged (a ReLU there breaks GL-equivariance, nfn.md §3)."""
    return eqx.tree_at(lambda b: [getattr(b, s) for s in MLP_SLOTS], w, [jax.nn.relu(getattr(w, s)) for s in MLP_SLOTS])


class InvariantLayer(eqx.Module):
    """``I: BlockWeights [N, C_in, ...] -> [N, C_out]``, unchanged under the block's group (nfn.md §4).

    ``I_e = Σ_d [Σ_pq Λ_pq [QK]_pq + Σ_p λ_p [VO]_p• + λ_A A_•• + Σ_q λ_B,q B_•q + λ_a a_• + Σ_q λ_b,q b_q] + c_e``;
    112,210 parameters for 10 -> 10 channels at D = 32.
    """

    coef: dict[str, jax.Array]
    bias: jax.Array  # [C_out]

    @staticmethod
    def init(spec: WeightSpaceSpec, c_in: int, c_out: int, *, key, dtype=jnp.float32) -> "InvariantLayer":
        D = spec.D
        coef = _init_group(key, {"qk": (D, D), "vo_pool": (D,), "a_all": (), "b_pool": (D,), "ba_all": (), "bb": (D,)},
                           c_in, c_out, 2, dtype)
        return InvariantLayer(coef, jnp.zeros((c_out,), dtype))

    def __call__(self, w: BlockWeights) -> jax.Array:
        st, c = _Stats.of(w), self.coef
        return (jnp.einsum("edpq,ndpq->ne", c["qk"], st.qk) + jnp.einsum("edp,ndp->ne", c["vo_pool"], st.vo_rows)
                + jnp.einsum("ed,nd->ne", c["a_all"], st.a_all) + jnp.einsum("edq,ndq->ne", c["b_pool"], st.b_cols)
                + jnp.einsum("ed,nd->ne", c["ba_all"], st.ba_all) + jnp.einsum("edq,ndq->ne", c["bb"], w.bb) + self.bias)
