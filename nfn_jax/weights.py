"""The weight space of the Small Transformer Zoo and its symmetry group (nfn.md §1-2).

Layout (batch ``N`` of models, channel axis ``C``; raw weights have ``C = 1``), one 8-slot record per block::

    q, k: [N, C, h, D, D_k]   v: [N, C, h, D, D_v]   o: [N, C, h, D_v, D]
    a: [N, C, D, D_A]   ba: [N, C, D_A]   b: [N, C, D_A, D]   bb: [N, C, D]

Row-vector convention: ``W_Q^s`` maps a token row ``y [D]`` to ``y W_Q^s [D_k]``. ``ZooWeights`` adds the
non-equivariant parts (classifier, embedding), kept as ``[N, ...]`` arrays in torch layout under the state-dict
names, so conversion from and to a zoo state dict is exact.

Group (per block, independent copies): ``G = S_h x GL(D_k)^h x GL(D_v)^h x P_D x P_{D_A}`` acting as

    W_Q^s -> W_Q^{σ(s)} M_{σ(s)}^T      W_K^s -> W_K^{σ(s)} M_{σ(s)}^{-1}
    W_V^s -> W_V^{σ(s)} N_{σ(s)}        W_O^s -> N_{σ(s)}^{-1} W_O^{σ(s)} P_O
    W_A -> P_O^T W_A P_A   b_A -> b_A P_A   W_B -> P_A^T W_B   b_B -> b_B

A permutation matrix ``P`` with index array ``perm`` acts on a row vector as ``(x P)_j = x_{perm[j]}``.
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

BLOCK_SLOTS = ("q", "k", "v", "o", "a", "ba", "b", "bb")
CLASSIFIER_KEYS = ("classifier.fc1.weight", "classifier.fc1.bias", "classifier.fc2.weight", "classifier.fc2.bias")
EMBEDDING_FEATURE_KEYS = ("embedding.conv1.weight", "embedding.conv1.bias")  # the positional encoding is not a feature


@dataclass(frozen=True)
class WeightSpaceSpec:
    """Sizes of one zoo weight space: width ``D``, per-head ``D_k``/``D_v``, MLP width ``D_A``, heads, blocks."""

    D: int = 32
    D_k: int = 16
    D_v: int = 16
    D_A: int = 64
    h: int = 2
    n_blocks: int = 2

    def __post_init__(self):
        for name in ("D", "D_k", "D_v", "D_A", "h", "n_blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"weight_space.{name} must be positive, got {getattr(self, name)}")

    def slot_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-model, per-channel shape of each block slot."""
        h, D, Dk, Dv, DA = self.h, self.D, self.D_k, self.D_v, self.D_A
        return {"q": (h, D, Dk), "k": (h, D, Dk), "v": (h, D, Dv), "o": (h, Dv, D),
                "a": (D, DA), "ba": (DA,), "b": (DA, D), "bb": (D,)}

    def validate(self, weights: "ZooWeights") -> None:
        """Raise ``ValueError`` naming the first tensor whose shape does not fit this spec."""
        if len(weights.blocks) != self.n_blocks:
            raise ValueError(f"weights have {len(weights.blocks)} blocks but weight_space.n_blocks is {self.n_blocks}")
        expected = self.slot_shapes()
        lead = None
        for i, block in enumerate(weights.blocks):
            for slot in BLOCK_SLOTS:
                shape = tuple(getattr(block, slot).shape)
                if shape[2:] != expected[slot] or len(shape) != len(expected[slot]) + 2:
                    raise ValueError(f"tensor blocks[{i}].{slot} has shape {shape}; expected [N, C, *{expected[slot]}]")
                lead = shape[:2] if lead is None else lead
                if shape[:2] != lead:
                    raise ValueError(f"tensor blocks[{i}].{slot} has leading [N, C] = {shape[:2]}, other slots {lead}")


class BlockWeights(eqx.Module):
    """The 8 slots of one encoder block, each ``[N, C, ...]`` (module docstring)."""

    q: jax.Array
    k: jax.Array
    v: jax.Array
    o: jax.Array
    a: jax.Array
    ba: jax.Array
    b: jax.Array
    bb: jax.Array

    def qk(self) -> jax.Array:
        """``[QK] = Σ_s W_Q^s W_K^{sT}``: ``[N, C, D, D]``, G-invariant."""
        return jnp.einsum("ncspk,ncsqk->ncpq", self.q, self.k)

    def vo(self) -> jax.Array:
        """``[VO] = Σ_s W_V^s W_O^s``: ``[N, C, D, D]``, maps to ``[VO] P_O``."""
        return jnp.einsum("ncspv,ncsvr->ncpr", self.v, self.o)


class ZooWeights(eqx.Module):
    """A batch of zoo models: equivariant blocks plus classifier/embedding tensors (torch layout, ``[N, ...]``)."""

    blocks: tuple[BlockWeights, ...]
    classifier: dict[str, jax.Array]
    embedding: dict[str, jax.Array]

    @property
    def num_models(self) -> int:
        return int(self.blocks[0].q.shape[0])

    def classifier_features(self) -> jax.Array:
        """``[fc1.W, fc1.b, fc2.W, fc2.b]`` flattened row-major: ``[N, F_cls]`` (nfn.md §4, classifier branch)."""
        return jnp.concatenate([self.classifier[k].reshape(self.num_models, -1) for k in CLASSIFIER_KEYS], axis=1)

    def embedding_features(self) -> jax.Array | None:
        """``[conv.W, conv.b]`` flattened: ``[N, F_emb]``, or None when the checkpoints carry no embedding."""
        if not all(k in self.embedding for k in EMBEDDING_FEATURE_KEYS):
            return None
        return jnp.concatenate([self.embedding[k].reshape(self.num_models, -1) for k in EMBEDDING_FEATURE_KEYS], axis=1)


def _block_prefix(i: int) -> str:
    return f"encoder.{i}"


def infer_spec(state_dict: dict[str, np.ndarray], num_heads: int) -> WeightSpaceSpec:
    """Read ``D``, ``D_A`` and the block count from a zoo state dict (head count is not recoverable: pass it)."""
    n_blocks = 0
    while f"{_block_prefix(n_blocks)}.fc1.weight" in state_dict:
        n_blocks += 1
    if n_blocks == 0:
        raise ValueError("state dict has no tensor encoder.0.fc1.weight: not a zoo checkpoint")
    D_A, D = state_dict["encoder.0.fc1.weight"].shape
    inner = state_dict["encoder.0.attention.queries.weight"].shape[0]
    if inner % num_heads:
        raise ValueError(f"num_heads {num_heads} does not divide the attention width {inner}")
    return WeightSpaceSpec(D=D, D_k=inner // num_heads, D_v=inner // num_heads, D_A=D_A, h=num_heads, n_blocks=n_blocks)


def block_from_state_dict(state_dict, i: int, spec: WeightSpaceSpec) -> dict[str, np.ndarray]:
    """Per-model slots of block ``i`` (no N/C axes) from a torch-layout state dict (``Linear.weight`` is ``[out, in]``).

    ``W_Q^s`` = rows ``s D_k .. (s+1) D_k - 1`` of ``queries.weight`` transposed to ``[D, D_k]`` (nfn.md §1).
    """
    p, h = _block_prefix(i), spec.h
    expected = {f"{p}.attention.queries.weight": (h * spec.D_k, spec.D), f"{p}.attention.keys.weight": (h * spec.D_k, spec.D),
                f"{p}.attention.values.weight": (h * spec.D_v, spec.D), f"{p}.attention.out_projection.weight": (spec.D, h * spec.D_v),
                f"{p}.fc1.weight": (spec.D_A, spec.D), f"{p}.fc1.bias": (spec.D_A,),
                f"{p}.fc2.weight": (spec.D, spec.D_A), f"{p}.fc2.bias": (spec.D,)}
    for name, shape in expected.items():
        if name not in state_dict:
            raise ValueError(f"state dict has no tensor {name}")
        if tuple(state_dict[name].shape) != shape:
            raise ValueError(f"tensor {name} has shape {tuple(state_dict[name].shape)}; expected {shape}")
    heads = lambda w, d: np.asarray(w).reshape(h, d, spec.D).transpose(0, 2, 1)  # noqa: E731  [h*d, D] -> [h, D, d]
    return {
        "q": heads(state_dict[f"{p}.attention.queries.weight"], spec.D_k),
        "k": heads(state_dict[f"{p}.attention.keys.weight"], spec.D_k),
        "v": heads(state_dict[f"{p}.attention.values.weight"], spec.D_v),
        "o": np.asarray(state_dict[f"{p}.attention.out_projection.weight"]).T.reshape(h, spec.D_v, spec.D),
        "a": np.asarray(state_dict[f"{p}.fc1.weight"]).T, "ba": np.asarray(state_dict[f"{p}.fc1.bias"]),
        "b": np.asarray(state_dict[f"{p}.fc2.weight"]).T, "bb": np.asarray(state_dict[f"{p}.fc2.bias"]),
    }


def block_to_state_dict(slots: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`block_from_state_dict` (exact: only transposes and reshapes)."""
    p = _block_prefix(i)
    h, D, Dk = slots["q"].shape
    Dv = slots["v"].shape[2]
    unheads = lambda w, d: np.asarray(w).transpose(0, 2, 1).reshape(h * d, D)  # noqa: E731
    return {
        f"{p}.attention.queries.weight": unheads(slots["q"], Dk),
        f"{p}.attention.keys.weight": unheads(slots["k"], Dk),
        f"{p}.attention.values.weight": unheads(slots["v"], Dv),
        f"{p}.attention.out_projection.weight": np.asarray(slots["o"]).reshape(h * Dv, D).T,
        f"{p}.fc1.weight": np.asarray(slots["a"]).T, f"{p}.fc1.bias": np.asarray(slots["ba"]),
        f"{p}.fc2.weight": np.asarray(slots["b"]).T, f"{p}.fc2.bias": np.asarray(slots["bb"]),
    }


def zoo_weights_from_state_dicts(state_dicts: list[dict], spec: WeightSpaceSpec, dtype=np.float32) -> ZooWeights:
    """Stack ``N`` zoo state dicts into :class:`ZooWeights` with ``C = 1``."""
    if not state_dicts:
        raise ValueError("no state dicts to convert")
    blocks = []
    for i in range(spec.n_blocks):
        per_model = [block_from_state_dict(sd, i, spec) for sd in state_dicts]
        blocks.append(BlockWeights(**{s: jnp.asarray(np.stack([m[s] for m in per_model])[:, None], dtype) for s in BLOCK_SLOTS}))
    first = state_dicts[0]
    others = lambda prefix: [k for k in first if k.startswith(prefix)]  # noqa: E731
    missing = [k for k in CLASSIFIER_KEYS if k not in first]
    if missing:
        raise ValueError(f"state dict has no tensor {missing[0]}")

    def stacked(key):
        shapes = {tuple(np.shape(sd.get(key, ()))) for sd in state_dicts}
        if len(shapes) != 1:
            raise ValueError(f"tensor {key} has different shapes across checkpoints: {sorted(shapes)}")
        return jnp.asarray(np.stack([np.asarray(sd[key]) for sd in state_dicts]), dtype)

    return ZooWeights(tuple(blocks), {k: stacked(k) for k in others("classifier.")}, {k: stacked(k) for k in others("embedding.")})


def zoo_weights_to_state_dicts(weights: ZooWeights) -> list[dict[str, np.ndarray]]:
    """Inverse of :func:`zoo_weights_from_state_dicts` (channel 0 of each block slot)."""
    out = []
    for n in range(weights.num_models):
        sd = {}
        for i, block in enumerate(weights.blocks):
            sd.update(block_to_state_dict({s: np.asarray(getattr(block, s)[n, 0]) for s in BLOCK_SLOTS}, i))
        sd.update({k: np.asarray(v[n]) for k, v in {**weights.classifier, **weights.embedding}.items()})
        out.append(sd)
    return out


# ----------------------------------------------------------------------------------------------- group action


class BlockGroupElement(eqx.Module):
    """``g = (σ, {M_s}, {N_s}, P_O, P_A)`` for one block: ``sigma [h]``, ``M [h, D_k, D_k]``, ``N [h, D_v, D_v]``,
    ``perm_o [D]``, ``perm_a [D_A]`` (permutations as index arrays, module docstring)."""

    sigma: jax.Array
    M: jax.Array
    N: jax.Array
    perm_o: jax.Array
    perm_a: jax.Array


def _numpy_rng(key) -> np.random.Generator:
    """A numpy generator seeded by a JAX key (group elements are sampled on the host: cheap, no compilation)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key), np.uint32).ravel().tolist())


def well_conditioned_matrices(rng: np.random.Generator, count: int, n: int, max_cond: float = 100.0) -> np.ndarray:
    """``count`` matrices ``I + (0.3/√n) randn`` of size ``n`` (nfn.md §11); asserts cond < ``max_cond``."""
    m = np.eye(n) + 0.3 / np.sqrt(n) * rng.standard_normal((count, n, n))
    cond = np.linalg.cond(m)
    if not np.all(cond < max_cond):
        raise AssertionError(f"sampled GL element has condition number {cond.max():.1f} >= {max_cond}")
    return m


def random_block_group_element(key, spec: WeightSpaceSpec, dtype=jnp.float64, factors: tuple[str, ...] = ("sigma", "gl", "p_o", "p_a")) -> BlockGroupElement:
    """A random element of one block's group; ``factors`` picks which factors are non-identity (to localise bugs)."""
    unknown = set(factors) - {"sigma", "gl", "p_o", "p_a"}
    if unknown:
        raise ValueError(f"unknown group factors {sorted(unknown)}")
    rng = _numpy_rng(key)
    eye = lambda n: np.broadcast_to(np.eye(n), (spec.h, n, n))  # noqa: E731
    perm = lambda name, n: rng.permutation(n) if name in factors else np.arange(n)  # noqa: E731
    sigma, perm_o, perm_a = perm("sigma", spec.h), perm("p_o", spec.D), perm("p_a", spec.D_A)
    M = well_conditioned_matrices(rng, spec.h, spec.D_k) if "gl" in factors else eye(spec.D_k)
    N = well_conditioned_matrices(rng, spec.h, spec.D_v) if "gl" in factors else eye(spec.D_v)
    return BlockGroupElement(sigma=jnp.asarray(sigma), M=jnp.asarray(M, dtype), N=jnp.asarray(N, dtype),
                             perm_o=jnp.asarray(perm_o), perm_a=jnp.asarray(perm_a))


def random_group_element(key, shapes: WeightSpaceSpec, dtype=jnp.float64, factors=("sigma", "gl", "p_o", "p_a")) -> tuple[BlockGroupElement, ...]:
    """An independent random group element per block (well-conditioned GL factors, cond < 100)."""
    return tuple(random_block_group_element(k, shapes, dtype, factors) for k in jax.random.split(key, shapes.n_blocks))


@eqx.filter_jit
def act_on_block(g: BlockGroupElement, w: BlockWeights) -> BlockWeights:
    """``g · W`` for one block (module docstring); works on any ``[N, C, ...]`` slots."""
    M, N = g.M[g.sigma].astype(w.q.dtype), g.N[g.sigma].astype(w.v.dtype)
    q, k, v, o = w.q[:, :, g.sigma], w.k[:, :, g.sigma], w.v[:, :, g.sigma], w.o[:, :, g.sigma]
    return BlockWeights(
        q=jnp.einsum("ncspk,slk->ncspl", q, M),  # W_Q M^T
        k=jnp.einsum("ncspk,skl->ncspl", k, jnp.linalg.inv(M)),  # W_K M^{-1}
        v=jnp.einsum("ncspk,skl->ncspl", v, N),  # W_V N
        o=jnp.einsum("slk,ncskr->ncslr", jnp.linalg.inv(N), o)[..., g.perm_o],  # N^{-1} W_O P_O
        a=w.a[:, :, g.perm_o][..., g.perm_a],  # P_O^T W_A P_A
        ba=w.ba[..., g.perm_a],
        b=w.b[:, :, g.perm_a],  # P_A^T W_B
        bb=w.bb,
    )


def act(g: tuple[BlockGroupElement, ...] | BlockGroupElement, weights: ZooWeights | BlockWeights):
    """Apply a group element: per block for :class:`ZooWeights` (classifier and embedding untouched)."""
    if isinstance(weights, BlockWeights):
        return act_on_block(g, weights)
    if len(g) != len(weights.blocks):
        raise ValueError(f"group element has {len(g)} blocks but the weights have {len(weights.blocks)}")
    return ZooWeights(tuple(act_on_block(gi, b) for gi, b in zip(g, weights.blocks)), weights.classifier, weights.embedding)
