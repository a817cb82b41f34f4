"""The zoo member in plain PyTorch, module for module as the reference's (nfn.md §5.1): the baseline of
``bench/zoo_throughput.py`` (one model at a time, the reference's way) and the parity check of
:mod:`nfn_jax.zoo.model`. Needs torch (an optional extra); nothing else in the package imports this module.

Its state-dict names are the released checkpoints' (``embedding.conv1.weight``, ``encoder.0.attention.queries.weight``,
...), i.e. the keys of :func:`nfn_jax.zoo.model.init_params` plus the positional-encoding buffer, so
``member.load_state_dict({**params, **arch.buffers()})`` moves a JAX member into torch.
"""

import math

import numpy as np
import torch
from torch import nn

from .model import ZooArchitecture, sinusoidal_encoding


class EmbedImages(nn.Module):
    def __init__(self, arch: ZooArchitecture, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv2d(arch.num_channels, arch.embed_dim, kernel_size=arch.patch_size, stride=arch.patch_size)
        pe = torch.from_numpy(sinusoidal_encoding(arch.num_tokens, arch.embed_dim))
        self.pos_embedding = nn.Parameter(pe, requires_grad=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, images):  # [B, C, H, W]
        x = self.conv1(images).flatten(2).transpose(1, 2)
        return self.dropout(x + self.pos_embedding)


class EmbedTokens(nn.Module):
    """Frozen table lookup + PE[:L] (not stored in checkpoints, as the reference strips it)."""

    def __init__(self, arch: ZooArchitecture, table: np.ndarray, dropout: float):
        super().__init__()
        self.register_buffer("table", torch.from_numpy(np.asarray(table, np.float32)), persistent=False)
        pe = torch.from_numpy(sinusoidal_encoding(arch.max_len, arch.embed_dim))
        self.register_buffer("pe", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids):  # [B, L] int64
        return self.dropout(self.table[ids] + self.pe[: ids.shape[1]])


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.queries, self.keys, self.values, self.out_projection = (nn.Linear(dim, dim, bias=False) for _ in range(4))

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = (f(x).reshape(B, T, self.heads, -1).transpose(1, 2) for f in (self.queries, self.keys, self.values))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // self.heads), dim=-1)
        return self.out_projection((probs @ v).transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """No residuals, non-affine LayerNorm; dropout on the attention and MLP outputs."""

    def __init__(self, arch: ZooArchitecture, dropout: float):
        super().__init__()
        D = arch.embed_dim
        self.norm1, self.norm2 = nn.LayerNorm(D, elementwise_affine=False), nn.LayerNorm(D, elementwise_affine=False)
        self.attention = Attention(D, arch.num_heads)
        self.fc1, self.fc2 = nn.Linear(D, arch.mlp_dim), nn.Linear(arch.mlp_dim, D)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x):
        x = self.dropout1(self.attention(self.norm1(x)))
        return self.dropout2(self.fc2(torch.relu(self.fc1(self.norm2(x)))))


class Classifier(nn.Module):
    def __init__(self, arch: ZooArchitecture):
        super().__init__()
        self.fc1 = nn.Linear(arch.embed_dim, arch.classifier_hidden)
        self.fc2 = nn.Linear(arch.classifier_hidden, arch.num_classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.mean(1))))


class TorchMember(nn.Module):
    """Images ``[B, C, H, W]`` in [-1, 1] or token ids ``[B, L]`` (``table`` given) -> logits ``[B, classes]``."""

    def __init__(self, arch: ZooArchitecture, dropout: float = 0.0, table: np.ndarray | None = None):
        super().__init__()
        if arch.residual:
            raise ValueError("TorchMember is the reference's member: no residual connections")
        self.embedding = EmbedImages(arch, dropout) if arch.task == "image" else EmbedTokens(arch, table, dropout)
        self.encoder = nn.ModuleList(Block(arch, dropout) for _ in range(arch.num_blocks))
        self.norm = nn.LayerNorm(arch.embed_dim, elementwise_affine=False)
        self.classifier = Classifier(arch)

    def forward(self, inputs):
        x = self.embedding(inputs)
        for block in self.encoder:
            x = block(x)
        return self.classifier(self.norm(x))


def truncated_normal_init(member: nn.Module, std: float) -> None:
    """The reference's init: every Linear/Conv weight ~ N(0, std²) truncated at ±2 (absolute), biases 0."""
    for m in member.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def torch_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The reference's optimisers (coupled L2 as torch's ``weight_decay``); names as :data:`train.OPTIMIZERS`."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8, weight_decay=weight_decay)
    if name in ("sgd", "momentum"):
        return torch.optim.SGD(params, lr=lr, momentum=0.9 if name == "momentum" else 0.0, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be adam, rmsprop, sgd or momentum, got {name!r}")
