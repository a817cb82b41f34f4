"""CRATE: the white-box transformer of Yu et al. (NeurIPS 2023), as its reference implementation computes it.

Spec crate.md §2, row convention, one image of ``n = N + 1`` tokens (cls first)::

    tokens  = LN_d(Linear(LN_P(patchify(image)))), cls prepended, + pos          (LN_P optional: patch_ln)
    layer:  y = LN1(Z); W = y U^T (heads, head_size); A_k = softmax(W_k W_k^T / sqrt(p)) over keys
            Z_half = Z + out(concat_k A_k W_k)                                   (MSSA, out has a bias)
            x = LN2(Z_half); Z_next = ReLU(x + eta (x D - x D^T D) - eta lam)    (ISTA, no residual)
    head:   Linear(LN_d(Z_L[cls]))                                               (or the mean over tokens)

``images [..., height, width, channel] -> logits [..., classes]``. Init follows torch (spec §2 "Initialisation").
"""

import math

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax
from haliax import Axis, NamedArray
from haliax.nn.scan import Stacked

from common_jax.models import patchify

from .config import CrateConfig

Pos, KeyPos = "position", "key_position"


def torch_linear(In, Out, *, key, use_bias: bool = True) -> hnn.Linear:
    """A haliax Linear with torch's default init: weight and bias ~ U(+-1/sqrt(fan_in)); weight is ``(Out, In)``."""
    k_w, k_b = jax.random.split(key)
    fan_in = math.prod(ax.size for ax in hax.axis.ensure_tuple(In))
    bound = 1.0 / math.sqrt(fan_in)
    weight = hax.random.uniform(k_w, hax.concat_axis_specs(Out, In), minval=-bound, maxval=bound)
    bias = hax.random.uniform(k_b, Out, minval=-bound, maxval=bound) if use_bias else None
    return hnn.Linear(weight, bias, In, Out)


def ista_step(A: NamedArray, Z: NamedArray, D: NamedArray, eta: float, lam: float, *, Embed: str, Atoms: str):
    """One non-negative ISTA step on ``min_{A>=0} lam |A|_1 + 1/2 |Z - D A|^2``:
    ``ReLU(A - eta D^T(DA - Z) - eta lam)``.

    ``A [..., atoms]``, ``Z [..., embed]``, ``D [embed, atoms]`` (column form, spec §2 and §8.2) -> ``[..., atoms]``.
    """
    residual = hax.dot(D, A, axis=Atoms) - Z
    return hnn.relu(A - eta * hax.dot(D, residual, axis=Embed) - eta * lam)


class MSSA(eqx.Module):
    """Multi-head subspace self-attention: one bias-free U per layer serves as Q = K = V (spec §2, §1 step 1)."""

    U: hnn.Linear  # embed -> (heads, head_size), no bias
    out: hnn.Linear  # (heads, head_size) -> embed, with bias; not tied to U

    @staticmethod
    def init(config: CrateConfig, *, key) -> "MSSA":
        k_u, k_o = jax.random.split(key)
        heads = (config.Heads, config.HeadSize)
        return MSSA(torch_linear(config.Embed, heads, key=k_u, use_bias=False),
                    torch_linear(heads, config.Embed, key=k_o))

    def project(self, y: NamedArray) -> NamedArray:
        """``W = y U^T``: ``[..., position, embed] -> [..., position, heads, head_size]``."""
        return self.U(y)

    def attention(self, w: NamedArray) -> NamedArray:
        """``softmax_keys(W_k W_k^T / sqrt(p))``: ``[..., heads, position, key_position]``, rows sum to 1."""
        HeadSize = w.resolve_axis("head_size")
        scores = hax.dot(w, w.rename({Pos: KeyPos}), axis=HeadSize) / math.sqrt(HeadSize.size)
        return hnn.softmax(scores, axis=KeyPos)

    def __call__(self, y: NamedArray) -> tuple[NamedArray, NamedArray, NamedArray]:
        """``(out(concat_k A_k W_k) [..., position, embed], W, A)`` for the normalised input ``y``."""
        w = self.project(y)
        attn = self.attention(w)
        mixed = hax.dot(attn, w.rename({Pos: KeyPos}), axis=KeyPos)
        return self.out(mixed), w, attn


class ISTA(eqx.Module):
    """The sparsification step ``ReLU(x + eta (x D - x D^T D) - eta lam)`` with a complete dictionary D."""

    dictionary: NamedArray  # [embed, atoms]: dim 0 signal, dim 1 atoms (the torch weight as stored)
    eta: float = eqx.field(static=True)
    lam: float = eqx.field(static=True)

    @staticmethod
    def init(config: CrateConfig, *, key) -> "ISTA":
        bound = math.sqrt(6.0 / config.hidden_dim)
        D = hax.random.uniform(key, (config.Embed, config.Atoms), minval=-bound, maxval=bound)
        return ISTA(D, config.eta, config.lam)

    def __call__(self, x: NamedArray) -> NamedArray:
        """``[..., embed] -> [..., embed]`` (>= 0): ``ista_step(x, x, D)`` warm-started at ``A_0 = x``."""
        Embed, Atoms = self.dictionary.axes
        A = x.rename({Embed.name: Atoms.name})
        out = ista_step(A, x, self.dictionary, self.eta, self.lam, Embed=Embed.name, Atoms=Atoms.name)
        return out.rename({Atoms.name: Embed.name})


class LayerTrace(eqx.Module):
    """What a layer computed, for analysis without hooks (stacked on ``layers`` by the model's scan)."""

    projection: NamedArray  # W = U LN1(Z): [..., position, heads, head_size], the MSSA input (R^c measure point)
    attention: NamedArray  # [..., heads, position, key_position]
    z_half: NamedArray  # Z + MSSA: [..., position, embed]
    caption_projection: NamedArray  # U LN1(Z_half): the paper caption's R^c(Z^{l+1/2} | U^l) measure point
    z_next: NamedArray  # the ISTA output: [..., position, embed], >= 0


class CrateLayer(eqx.Module):
    ln1: hnn.LayerNorm
    mssa: MSSA
    ln2: hnn.LayerNorm
    ista: ISTA

    @staticmethod
    def init(config: CrateConfig, *, key) -> "CrateLayer":
        k_mssa, k_ista = jax.random.split(key)
        ln = lambda: hnn.LayerNorm.init(config.Embed, eps=config.ln_eps)  # noqa: E731
        return CrateLayer(ln(), MSSA.init(config, key=k_mssa), ln(), ISTA.init(config, key=k_ista))

    def traced(self, z: NamedArray) -> tuple[NamedArray, LayerTrace]:
        """``(Z_next, trace)`` for ``z [..., position, embed]``."""
        mixed, w, attn = self.mssa(self.ln1(z))
        z_half = z + mixed
        z_next = self.ista(self.ln2(z_half))
        return z_next, LayerTrace(w, attn, z_half, self.mssa.project(self.ln1(z_half)), z_next)

    def __call__(self, z: NamedArray) -> NamedArray:
        mixed, _, _ = self.mssa(self.ln1(z))
        return self.ista(self.ln2(z + mixed))


class Crate(eqx.Module):
    config: CrateConfig = eqx.field(static=True)
    patch_ln: hnn.LayerNorm | None  # over each flattened patch, (p1, p2, channel) order
    patch_proj: hnn.Linear  # patch -> embed
    embed_ln: hnn.LayerNorm
    cls_token: NamedArray  # [embed]
    pos_embed: NamedArray  # [position, embed]; row 0 is the cls token's
    layers: Stacked[CrateLayer]
    head_ln: hnn.LayerNorm
    head: hnn.Linear  # embed -> classes

    @staticmethod
    def init(config: CrateConfig, *, key) -> "Crate":
        k_patch, k_cls, k_pos, k_layers, k_head = jax.random.split(key, 5)
        layers = Stacked.init(config.Layers, CrateLayer, gradient_checkpointing=config.gradient_checkpointing)(
            config, key=jax.random.split(k_layers, config.num_layers)
        )
        ln = lambda axis: hnn.LayerNorm.init(axis, eps=config.ln_eps)  # noqa: E731
        return Crate(
            config,
            ln(config.Patch) if config.patch_ln else None,
            torch_linear(config.Patch, config.Embed, key=k_patch),
            ln(config.Embed),
            hax.random.normal(k_cls, config.Embed),
            hax.random.normal(k_pos, (config.Pos, config.Embed)),
            layers,
            ln(config.Embed),
            torch_linear(config.Embed, config.Classes, key=k_head),
        )

    def embed(self, images: NamedArray) -> NamedArray:
        """Pre-processing (spec §2): ``[..., height, width, channel] -> [..., position, embed]``, cls first."""
        patches = patchify(images, self.config.patch_size)
        if self.patch_ln is not None:
            patches = self.patch_ln(patches)
        tokens = self.embed_ln(self.patch_proj(patches))
        batch = [ax for ax in tokens.axes if ax.name not in (Pos, "embed")]
        cls = hax.broadcast_to(self.cls_token, (*batch, Axis(Pos, 1), self.config.Embed))
        return hax.concatenate(Pos, [cls, tokens.rearrange((*batch, Pos, "embed"))]) + self.pos_embed

    def classify(self, z: NamedArray) -> NamedArray:
        """The head on the last layer's tokens: ``[..., position, embed] -> [..., classes]``."""
        pooled = z[Pos, 0] if self.config.pool == "cls" else hax.mean(z, Pos)
        return self.head(self.head_ln(pooled))

    def forward_with_intermediates(self, images: NamedArray) -> tuple[NamedArray, LayerTrace]:
        """``(logits, trace)``; every field of ``trace`` carries a leading ``layers`` axis."""
        z, trace = self.layers.scan_via(CrateLayer.traced)(self.embed(images))
        return self.classify(z), trace

    def __call__(self, images: NamedArray, *, key=None, inference: bool = True) -> NamedArray:
        """Logits ``[..., classes]``. ``key`` and ``inference`` are accepted for the trainer's calling convention;
        CRATE has no dropout (the reference sets every rate to 0), so neither changes the result."""
        del key, inference
        return self.classify(self.layers.fold(self.embed(images)))
