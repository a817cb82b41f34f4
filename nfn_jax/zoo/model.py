"""The zoo member: a 2-block transformer with no residuals and non-affine LayerNorm (nfn.md §1, §5.1).

Parameters are a flat dict in torch layout under the released state-dict names (``encoder.0.fc1.weight`` is
``[out, in]``), so a checkpoint is the dict itself. Forward of one model on a whole minibatch with plain matmuls;
the zoo generator vmaps it over models (nfn.md §9.1).

Block (row vectors, tokens are rows)::

    Y = LN(X);  Att = Σ_s softmax((Y W_Q^s)(Y W_K^s)^T / √D_k) (Y W_V^s) W_O^s;  Z = LN(Att)
    out = ReLU(Z W_A + b_A) W_B + b_B

with dropout after the embedding plus positions (the reference's embedding layer) and on ``Att`` and ``out``.
``residual: true`` adds ``X`` to ``Att`` and ``Z`` to ``out``: a standard block, kept only as the negative control
for the ``P_D`` symmetry.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

TASKS = ("image", "text")
POS_KEY = "embedding.pos_embedding"


@dataclass(frozen=True)
class ZooArchitecture:
    task: str = "image"
    embed_dim: int = 32
    num_heads: int = 2
    mlp_dim: int = 64
    num_blocks: int = 2
    num_classes: int = 10
    classifier_hidden: int = 32
    image_size: int = 28  # image task: side after optional downsampling
    num_channels: int = 1
    patch_size: int = 4
    max_len: int = 64  # text task: positional-encoding length = the most tokens an example keeps (reference: 512)
    residual: bool = False  # negative control only: a standard residual block breaks the P_D symmetry

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"zoo.architecture.task must be one of {TASKS}, got {self.task!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"zoo.architecture.num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})")
        if self.task == "image" and self.image_size % self.patch_size:
            raise ValueError(f"zoo.architecture.patch_size ({self.patch_size}) must divide image_size ({self.image_size})")
        for name in ("embed_dim", "mlp_dim", "num_blocks", "num_classes", "classifier_hidden", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"zoo.architecture.{name} must be positive, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def num_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2 if self.task == "image" else self.max_len

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        D, A = self.embed_dim, self.mlp_dim
        shapes = {}
        if self.task == "image":
            shapes["embedding.conv1.weight"] = (D, self.num_channels, self.patch_size, self.patch_size)
            shapes["embedding.conv1.bias"] = (D,)
        for i in range(self.num_blocks):
            p = f"encoder.{i}"
            for name in ("queries", "keys", "values", "out_projection"):
                shapes[f"{p}.attention.{name}.weight"] = (D, D)
            shapes.update({f"{p}.fc1.weight": (A, D), f"{p}.fc1.bias": (A,), f"{p}.fc2.weight": (D, A), f"{p}.fc2.bias": (D,)})
        shapes.update({"classifier.fc1.weight": (self.classifier_hidden, D), "classifier.fc1.bias": (self.classifier_hidden,),
                       "classifier.fc2.weight": (self.num_classes, self.classifier_hidden),
                       "classifier.fc2.bias": (self.num_classes,)})
        return shapes

    @property
    def dropout_sites(self) -> int:
        """Dropout layers of the reference's member: after the embedding, then two per block."""
        return 1 + 2 * self.num_blocks

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable tensors stored in the state dict: the image task's sinusoidal positional encoding."""
        return {POS_KEY: sinusoidal_encoding(self.num_tokens, self.embed_dim)} if self.task == "image" else {}


def sinusoidal_encoding(length: int, dim: int) -> np.ndarray:
    """``PE[t, 2i] = sin(t / 10000^{2i/dim})``, ``PE[t, 2i+1] = cos(...)``: ``[length, dim]`` float32."""
    pos = np.arange(length)[:, None]
    freq = np.exp(-np.log(10000.0) * np.arange(0, dim, 2) / dim)
    pe = np.zeros((length, dim), np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * freq), np.cos(pos * freq[: dim // 2])
    return pe


def init_params(arch: ZooArchitecture, init_std, key) -> dict[str, jax.Array]:
    """Weights ~ truncated normal with std ``init_std``, truncated at ±2 absolute; biases 0 (nfn.md §5.2)."""
    shapes = arch.trainable_shapes()
    keys = dict(zip(shapes, jax.random.split(key, len(shapes))))
    params = {}
    for name, shape in shapes.items():
        if name.endswith(".bias"):
            params[name] = jnp.zeros(shape, jnp.float32)
        else:
            bound = 2.0 / init_std
            params[name] = init_std * jax.random.truncated_normal(keys[name], -bound, bound, shape, jnp.float32)
    return params


def layer_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Non-affine LayerNorm over the last axis, ``(x - mean) · rsqrt(var + eps)`` as torch's kernel computes it."""
    centred = x - x.mean(-1, keepdims=True)
    return centred * jax.lax.rsqrt((centred**2).mean(-1, keepdims=True) + eps)


@jax.custom_jvp
def softmax(scores: jax.Array) -> jax.Array:
    """Softmax over the last axis, ``exp(s - max) · (1 / Σ exp(s - max))`` as torch's kernel computes it (one reciprocal
    per row instead of a division per entry, much cheaper on CPU); ``-inf`` scores get probability 0."""
    unnormalised = jnp.exp(scores - jax.lax.stop_gradient(scores.max(-1, keepdims=True)))
    return unnormalised * (1.0 / unnormalised.sum(-1, keepdims=True))


@softmax.defjvp
def _softmax_jvp(primals, tangents):
    (scores,), (tangent,) = primals, tangents
    probs = softmax(scores)
    return probs, probs * (tangent - (probs * tangent).sum(-1, keepdims=True))


def dropout_noise(arch: ZooArchitecture, key, batch: int, tokens: int) -> jax.Array:
    """Uniform noise ``[sites, B, T, D]`` deciding every dropout mask of one training step (sites: the embedding,
    then the attention and MLP outputs of each block). A unit is kept where ``noise < 1 - rate``.

    Drawn apart from the parameters so that models sharing the reference's seed share it (drawn once per step, not
    once per model), while each model thresholds it at its own rate."""
    return jax.random.uniform(key, (arch.dropout_sites, batch, tokens, arch.embed_dim))


def dropout(x: jax.Array, rate, noise: jax.Array | None) -> jax.Array:
    """Inverted dropout as torch's: zero where ``noise >= 1 - rate``, else ``x · 1 / (1 - rate)``. ``noise=None``:
    identity."""
    if noise is None:
        return x
    keep = 1.0 - rate
    return jnp.where(noise < keep, x * (1.0 / keep), 0.0)


def encoder_block(params, i: int, x: jax.Array, num_heads: int, *, residual: bool = False, dropout_rate=0.0,
                  noise: jax.Array | None = None, key_mask: jax.Array | None = None):
    """One block on tokens ``x [B, T, D] -> [B, T, D]`` (module docstring).

    ``noise [2, B, T, D]``: the dropout noise of the attention and MLP outputs (``None``: no dropout).
    ``key_mask [B, T]``: the keys each example attends to (``None``: all); see :func:`forward`.
    """
    p = f"encoder.{i}"
    B, T, _ = x.shape
    y = layer_norm(x)
    key_dim = params[f"{p}.attention.keys.weight"].shape[0] // num_heads  # D_k (D_v may differ)

    def heads(name, scale=1.0):
        return (y @ (params[f"{p}.attention.{name}.weight"].T * scale)).reshape(B, T, num_heads, -1)

    # 1/√D_k folded into W_Q (a D x h·D_k matrix) rather than applied to the scores (B·h·T² of them)
    q, k, v = heads("queries", 1.0 / np.sqrt(key_dim)), heads("keys"), heads("values")
    scores = jnp.einsum("bthd,bshd->bhts", q, k)
    probs = softmax(scores if key_mask is None else jnp.where(key_mask[:, None, None, :], scores, -jnp.inf))
    att = jnp.einsum("bhts,bshd->bthd", probs, v).reshape(B, T, -1)
    att = att @ params[f"{p}.attention.out_projection.weight"].T
    att = dropout(att, dropout_rate, None if noise is None else noise[0])
    z = layer_norm(att + x if residual else att)
    out = jax.nn.relu(z @ params[f"{p}.fc1.weight"].T + params[f"{p}.fc1.bias"]) @ params[f"{p}.fc2.weight"].T
    out = dropout(out + params[f"{p}.fc2.bias"], dropout_rate, None if noise is None else noise[1])
    return out + z if residual else out


def embed_images(arch: ZooArchitecture, params, images: jax.Array) -> jax.Array:
    """``[B, H, W, C]`` in [-1, 1] -> tokens ``[B, T, D]``: Conv2d(C -> D, kernel = stride = patch) + PE."""
    B, H, W, C = images.shape
    P = arch.patch_size
    x = images.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 5, 2, 4).reshape(B, -1, C * P * P)
    w = params["embedding.conv1.weight"].reshape(arch.embed_dim, -1)  # [D, (c, p1, p2)] as the conv's layout
    return x @ w.T + params["embedding.conv1.bias"] + params[POS_KEY]


def embed_tokens(arch: ZooArchitecture, table: jax.Array, ids: jax.Array) -> jax.Array:
    """Token ids ``[B, L]`` (``L <= max_len``) -> ``table[ids] + PE[:L]`` ``[B, L, D]`` (the frozen table's row 0,
    padding and unknown words, is zero)."""
    return table[ids] + jnp.asarray(sinusoidal_encoding(arch.max_len, arch.embed_dim)[: ids.shape[1]])


def forward(arch: ZooArchitecture, params, tokens: jax.Array, *, dropout_rate=0.0, noise: jax.Array | None = None,
            lengths: jax.Array | None = None) -> jax.Array:
    """Embedded tokens ``[B, T, D]`` -> logits ``[B, num_classes]``: embedding dropout, blocks, final LN, mean over
    tokens, classifier (nfn.md §5.1).

    ``noise [sites, B, T, D]`` (:func:`dropout_noise`; ``None``: evaluation, no dropout). ``lengths [B]``: example
    ``b`` is computed as if its input had ``lengths[b]`` tokens (its batch padded to its longest text, as the
    reference's per-batch padding does): positions ``>= lengths[b]`` are masked out of every attention and of the
    mean, so a batch may be stored wider than its longest text. ``None``: every position counts.
    """
    mask = None if lengths is None else jnp.arange(tokens.shape[1]) < lengths[:, None]
    x = dropout(tokens, dropout_rate, None if noise is None else noise[0])
    for i in range(arch.num_blocks):
        block_noise = None if noise is None else noise[1 + 2 * i : 3 + 2 * i]
        x = encoder_block(params, i, x, arch.num_heads, residual=arch.residual, dropout_rate=dropout_rate,
                          noise=block_noise, key_mask=mask)
    x = layer_norm(x)
    pooled = x.mean(1) if mask is None else (x * mask[..., None]).sum(1) / lengths[:, None].astype(x.dtype)
    hidden = jax.nn.relu(pooled @ params["classifier.fc1.weight"].T + params["classifier.fc1.bias"])
    return hidden @ params["classifier.fc2.weight"].T + params["classifier.fc2.bias"]


def logits(arch: ZooArchitecture, params, inputs: jax.Array, table: jax.Array | None = None, *, dropout_rate=0.0,
           noise: jax.Array | None = None, lengths: jax.Array | None = None) -> jax.Array:
    """Images ``[B, H, W, C]`` or token ids ``[B, L]`` (looked up in the frozen ``table`` + PE) -> ``[B, classes]``.

    Dropout (``noise``, ``dropout_rate``) acts after the embedding plus positions and on each block's attention and MLP
    outputs, as the reference's ``EmbedLayerVision`` / ``EmbedLayerText`` and ``Encoder``. ``lengths``: see
    :func:`forward`.
    """
    tokens = embed_images(arch, params, inputs) if arch.task == "image" else embed_tokens(arch, table, inputs)
    return forward(arch, params, tokens, dropout_rate=dropout_rate, noise=noise, lengths=lengths)
