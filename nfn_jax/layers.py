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


def xavier_groups(groups) -> dict[str, float]:
    """Standard deviation per coefficient from the reference's Xavier-normal groups.

    ``groups``: ``(power, terms)`` pairs in the reference's order, ``terms`` = ``(name, fan_in, fan_out)``; every
    term of a group gets ``σ = (2 / Σ(fan_in + fan_out))^{power/2}``. The fans are those the reference derives for
    each einsum term from its input shape and mask (a leading batch ``-1`` counts as 1). A name listed twice in a
    group counts twice; a name in two groups keeps the later one's σ (the reference re-initialises it).
    """
    stds = {}
    for power, terms in groups:
        total = sum(fan_in + fan_out for _, fan_in, fan_out in terms)
        for name, _, _ in terms:
            stds[name] = (2.0 / total) ** (power / 2)
    return stds


def equivariant_init_groups(spec: WeightSpaceSpec, d: int, e: int):
    """The Xavier groups of ``E: d -> e`` channels (nfn.md §4, init): ``<slot>.<term>`` names, ``<slot>.bias``.

    Power 1 for the Q/K/V/O slots and each MLP slot's bias-like group, 2 for the [QK]/[VO] group and the MLP-weight
    group. Reference quirks kept: E_A's b_B term is sized by D_A; E_bB's b_A and W_B terms are drawn twice (the
    second group wins, and W_B counts twice in its fans).
    """
    h, D, Dk, Dv, DA = spec.h, spec.D, spec.D_k, spec.D_v, spec.D_A
    pair = d * h * D * D  # a term contracting one channel's per-head [QK] or [VO] (the heads sum inside the term)
    return [
        (1, [("q.phi", d * Dk, h * D)]), (1, [("k.phi", d * Dk, h * D)]), (1, [("v.phi", d * Dv, h * D)]),
        (1, [("o.pool", d * D, h * Dv), ("o.self", d, h * Dv * D)]),
        (1, [("a.ba_self", d, DA), ("a.bb", d * DA, 1), ("a.bias", 0, e)]),
        (2, [("a.qk", pair, 1), ("a.vo_pool", pair, 1), ("a.vo_row", d * h * D, D)]),
        (2, [("a.ba_all", d * DA, 1), ("a.b_pool", d * DA * D, 1), ("a.b_row", d * D, DA), ("a.a_all", d * D * DA, 1),
             ("a.a_row", d * DA, D), ("a.a_col", d * D, DA), ("a.a_self", d, D * DA)]),
        (1, [("ba.ba_self", d, DA), ("ba.bb", d * D, 1), ("ba.bias", 0, e)]),
        (2, [("ba.qk", pair, 1), ("ba.vo_pool", pair, 1)]),
        (2, [("ba.b_pool", d * DA * D, 1), ("ba.b_row", d * D, DA), ("ba.a_all", d * D * DA, 1), ("ba.a_col", d * D, DA),
             ("ba.ba_all", d * DA, 1)]),
        (1, [("b.ba_self", d, DA), ("b.bb", d * D, 1), ("b.bias", 0, e * D)]),
        (2, [("b.qk", pair, 1), ("b.vo_pool", pair, 1)]),
        (2, [("b.b_pool", d * DA * D, 1), ("b.ba_all", d * DA, 1), ("b.a_all", d * D * DA, 1), ("b.a_col", d * D, DA),
             ("b.b_self", d * D, DA)]),
        (1, [("bb.ba_all", d * DA, 1), ("bb.bb", d * D, 1), ("bb.bias", 0, e * D)]),
        (2, [("bb.qk", pair, 1), ("bb.vo_pool", pair, 1)]),
        (2, [("bb.b_pool", d * DA * D, 1), ("bb.ba_all", d * DA, 1), ("bb.b_pool", d * DA * D, 1), ("bb.a_all", d * D * DA, 1)]),
    ]


def invariant_init_groups(spec: WeightSpaceSpec, d: int, e: int):
    """The Xavier groups of ``I: d -> e`` channels. Reference quirk kept: the b_B term's fan_in is 1."""
    D, DA, pair = spec.D, spec.D_A, d * spec.h * spec.D * spec.D
    return [(1, [("ba_all", d * DA, 1), ("bb", 1, 1), ("bias", 0, e)]),
            (2, [("qk", pair, 1), ("vo_pool", pair, 1)]),
            (2, [("a_all", d * D * DA, 1), ("b_pool", d * DA * D, 1)])]


def sample_normal(key, shapes: dict[str, tuple[int, ...]], stds: dict[str, float], dtype) -> dict[str, jax.Array]:
    """``N(0, stds[name]^2)`` of each shape, from one draw (few random ops: fast to compile)."""
    sizes = [math.prod(s) for s in shapes.values()]
    flat = jax.random.normal(key, (sum(sizes),), dtype)
    offsets = [0, *itertools.accumulate(sizes)]
    return {name: stds[name] * flat[lo:hi].reshape(shape)
            for (name, shape), lo, hi in zip(shapes.items(), offsets, offsets[1:])}


def _split(coefs: dict[str, jax.Array], slot: str) -> dict[str, jax.Array]:
    """The ``<slot>.<term>`` entries of ``coefs`` as ``{term: array}``."""
    return {name.split(".", 1)[1]: x for name, x in coefs.items() if name.split(".", 1)[0] == slot}


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
    def coefficient_shapes(spec: WeightSpaceSpec, c_in: int, c_out: int) -> dict[str, tuple[int, ...]]:
        """``{<slot>.<term>: shape}`` of every coefficient tensor (``[C_out, C_in, ...]``) and bias (``[C_out, ...]``)."""
        D, pair = spec.D, (c_out, c_in)
        per_term = {
            "q.phi": (D, D), "k.phi": (D, D), "v.phi": (D, D), "o.pool": (), "o.self": (),
            "a.qk": (D, D), "a.vo_pool": (D,), "a.vo_row": (D,), "a.a_all": (), "a.a_row": (), "a.a_col": (),
            "a.a_self": (), "a.b_pool": (D,), "a.b_row": (D,), "a.ba_all": (), "a.ba_self": (), "a.bb": (D,),
            "ba.qk": (D, D), "ba.vo_pool": (D,), "ba.a_all": (), "ba.a_col": (), "ba.b_pool": (D,), "ba.b_row": (D,),
            "ba.ba_all": (), "ba.ba_self": (), "ba.bb": (D,),
            "b.qk": (D, D, D), "b.vo_pool": (D, D), "b.a_all": (D,), "b.a_col": (D,), "b.b_pool": (D, D),
            "b.b_self": (D, D), "b.ba_all": (D,), "b.ba_self": (D,), "b.bb": (D, D),
            "bb.qk": (D, D, D), "bb.vo_pool": (D, D), "bb.a_all": (D,), "bb.b_pool": (D, D), "bb.ba_all": (D,),
            "bb.bb": (D, D),
        }
        biases = {"a.bias": (c_out,), "ba.bias": (c_out,), "b.bias": (c_out, D), "bb.bias": (c_out, D)}
        return {**{name: (*pair, *shape) for name, shape in per_term.items()}, **biases}

    @staticmethod
    def init(spec: WeightSpaceSpec, c_in: int, c_out: int, *, key, dtype=jnp.float32) -> "EquivariantLayer":
        """Xavier-normal per group with random biases, as the reference (:func:`equivariant_init_groups`)."""
        c = sample_normal(key, EquivariantLayer.coefficient_shapes(spec, c_in, c_out),
                          xavier_groups(equivariant_init_groups(spec, c_in, c_out)), dtype)
        coef = {slot: {k: v for k, v in _split(c, slot).items() if k != "bias"} for slot in ("a", "ba", "b", "bb")}
        return EquivariantLayer(
            phi_q=c["q.phi"], phi_k=c["k.phi"], phi_v=c["v.phi"], o_pool=c["o.pool"], o_self=c["o.self"],
            coef_a=coef["a"], coef_ba=coef["ba"], coef_b=coef["b"], coef_bb=coef["bb"],
            bias_a=c["a.bias"], bias_ba=c["ba.bias"], bias_b=c["b.bias"], bias_bb=c["bb.bias"],
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
    def coefficient_shapes(spec: WeightSpaceSpec, c_in: int, c_out: int) -> dict[str, tuple[int, ...]]:
        D = spec.D
        terms = {"qk": (D, D), "vo_pool": (D,), "a_all": (), "b_pool": (D,), "ba_all": (), "bb": (D,)}
        return {**{name: (c_out, c_in, *shape) for name, shape in terms.items()}, "bias": (c_out,)}

    @staticmethod
    def init(spec: WeightSpaceSpec, c_in: int, c_out: int, *, key, dtype=jnp.float32) -> "InvariantLayer":
        """Xavier-normal per group with a random bias, as the reference (:func:`invariant_init_groups`)."""
        c = sample_normal(key, InvariantLayer.coefficient_shapes(spec, c_in, c_out),
                          xavier_groups(invariant_init_groups(spec, c_in, c_out)), dtype)
        return InvariantLayer({k: v for k, v in c.items() if k != "bias"}, c["bias"])

    def __call__(self, w: BlockWeights) -> jax.Array:
        st, c = _Stats.of(w), self.coef
        return (jnp.einsum("edpq,ndpq->ne", c["qk"], st.qk) + jnp.einsum("edp,ndp->ne", c["vo_pool"], st.vo_rows)
                + jnp.einsum("ed,nd->ne", c["a_all"], st.a_all) + jnp.einsum("edq,ndq->ne", c["b_pool"], st.b_cols)
                + jnp.einsum("ed,nd->ne", c["ba_all"], st.ba_all) + jnp.einsum("edq,ndq->ne", c["bb"], w.bb) + self.bias)
