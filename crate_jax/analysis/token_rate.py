"""Per-layer coding rate R(Z) and sparsity of the token representations of any ViT (spec crate.md §4 estimators).

R^c measures compression against CRATE's MSSA subspaces U; a ViT has no U, so R^c is undefined for it. Defined for
any ViT: for each block's output tokens ``Z^{l+1} [n, d]`` of one image (CLS included), the coding rate with the
estimator of §4.1 on the full width as a single head, ``R = 1/2 logdet(I + d/(n eps) Z Z^T)`` with unit-norm token
rows and ``eps = 0.01``; and the fraction of entries of ``Z^{l+1}`` that are exactly zero (§4.2). A ViT's residual
stream has no ReLU-style sparsification, so its non-zero fraction is expected to be about 1.
"""

import equinox as eqx
import haliax as hax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

from common_jax.models.vit import ViT

from .coding_rate import DEFAULT_EPS, coding_rate
from .layerwise import LayerStats, layer_stats
from .sparsity import zero_fraction

BLOCK_OUTPUT = "block_output"
LABELS = ("coding rate R(Z) of the block output", "non-zero fraction of the block output")


@eqx.filter_jit
def block_outputs(vit: ViT, images: NamedArray) -> NamedArray:
    """Every block's output ``[layers, ..., position, embed]`` for ``images [..., height, width, channel]``."""
    def step(x, block):
        y = block(x)
        return y, y

    _, outputs = hax.scan(step, vit.blocks.Block)(vit.embed(images), vit.blocks.stacked)
    return outputs


def measure_vit_layers(vit: ViT, images: NamedArray, *, eps: float = DEFAULT_EPS,
                       batch_size: int = 100) -> list[LayerStats]:
    """One :class:`LayerStats` per block of ``vit`` on ``images`` (``[batch, height, width, channel]``), evaluated
    in inference mode; ``coding_rate_per_head_mean`` has the single full-width entry."""
    vit = eqx.nn.inference_mode(vit)
    Batch = images.axes[0]
    rates, zeros = [], []
    for start in range(0, Batch.size, batch_size):
        z = block_outputs(vit, images[Batch.name, start:start + batch_size])
        z = z.rearrange(("layers", Batch.name, "position", "embed")).array
        rates.append(np.asarray(coding_rate(z.astype(jnp.float32), eps))[..., None])
        zeros.append(np.asarray(zero_fraction(z)))
    return layer_stats(np.concatenate(rates, axis=1), 1.0 - np.concatenate(zeros, axis=1))
