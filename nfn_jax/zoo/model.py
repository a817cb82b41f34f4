"""The zoo member: a 2-block transformer with no residuals and non-affine LayerNorm (nfn.md §1, §5.1).

Parameters are a flat dict in torch layout under the released state-dict names (``encoder.0.fc1.weight`` is
``[out, in]``), so a checkpoint is the dict itself. Forward of one model on a whole minibatch with plain matmuls;
the zoo generator vmaps it over models (nfn.md §9.1).

Block (row vectors, tokens are rows)::

    Y = LN(X);  Att = Σ_s softmax((Y W_Q^s)(Y W_K^s)^T / √D_k) (Y W_V^s) W_O^s;  Z = LN(Att)
    out = ReLU(Z W_A + b_A) W_B + b_B

with dropout on ``Att`` and on ``out``. ``residual: true`` adds ``X`` to ``Att`` and ``Z`` to ``out``: a standard
block, kept only as the negative control for the ``P_D`` symmetry.
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
    max_len: int = 64  # text task: tokens per example
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
    """Non-affine LayerNorm over the last axis."""
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)


def _dropout(x, rate, key):
    if key is None:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def encoder_block(params, i: int, x: jax.Array, num_heads: int, *, residual: bool = False, dropout=0.0, key=None):
    """One block on tokens ``x [B, T, D] -> [B, T, D]`` (module docstring). ``key=None``: no dropout."""
    p = f"encoder.{i}"
    B, T, D = x.shape
    h = num_heads
    y = layer_norm(x)
    heads = lambda name: (y @ params[f"{p}.attention.{name}.weight"].T).reshape(B, T, h, -1)  # noqa: E731
    q, k, v = heads("queries"), heads("keys"), heads("values")
    scores = jnp.einsum("bthd,bshd->bhts", q, k) / jnp.sqrt(q.shape[-1]).astype(x.dtype)
    att = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(scores, axis=-1), v).reshape(B, T, -1)
    att = att @ params[f"{p}.attention.out_projection.weight"].T
    k1, k2 = jax.random.split(key) if key is not None else (None, None)
    att = _dropout(att, dropout, k1)
    z = layer_norm(att + x if residual else att)
    out = jax.nn.relu(z @ params[f"{p}.fc1.weight"].T + params[f"{p}.fc1.bias"]) @ params[f"{p}.fc2.weight"].T
    out = _dropout(out + params[f"{p}.fc2.bias"], dropout, k2)
    return out + z if residual else out


def embed_images(arch: ZooArchitecture, params, images: jax.Array) -> jax.Array:
    """``[B, H, W, C]`` in [-1, 1] -> tokens ``[B, T, D]``: Conv2d(C -> D, kernel = stride = patch) + PE."""
    B, H, W, C = images.shape
    P = arch.patch_size
    x = images.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 5, 2, 4).reshape(B, -1, C * P * P)
    w = params["embedding.conv1.weight"].reshape(arch.embed_dim, -1)  # [D, (c, p1, p2)] as the conv's layout
    return x @ w.T + params["embedding.conv1.bias"] + params[POS_KEY]


def forward(arch: ZooArchitecture, params, tokens: jax.Array, *, dropout=0.0, key=None) -> jax.Array:
    """Tokens ``[B, T, D]`` (already embedded) -> logits ``[B, num_classes]``: blocks, final LN, mean, classifier."""
    keys = jax.random.split(key, arch.num_blocks) if key is not None else [None] * arch.num_blocks
    x = tokens
    for i in range(arch.num_blocks):
        x = encoder_block(params, i, x, arch.num_heads, residual=arch.residual, dropout=dropout, key=keys[i])
    pooled = layer_norm(x).mean(1)
    hidden = jax.nn.relu(pooled @ params["classifier.fc1.weight"].T + params["classifier.fc1.bias"])
    return hidden @ params["classifier.fc2.weight"].T + params["classifier.fc2.bias"]


def logits(arch: ZooArchitecture, params, inputs: jax.Array, table: jax.Array | None = None, *, dropout=0.0, key=None):
    """Images ``[B, H, W, C]`` or token ids ``[B, T]`` (looked up in the frozen ``table`` + PE) -> ``[B, classes]``."""
    if arch.task == "image":
        tokens = embed_images(arch, params, inputs)
    else:
        tokens = table[inputs] + jnp.asarray(sinusoidal_encoding(arch.max_len, arch.embed_dim))
    return forward(arch, params, tokens, dropout=dropout, key=key)
