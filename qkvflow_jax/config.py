"""Configs of the DiffEqFormer models (spec §1, §1.8, §6, §7), registered in levanter's ``LmConfig`` registry.

``model: {type: diffeqformer, ...}`` (GPT variant), ``{type: diffeqformer_llama, ...}`` (Llama variant) and
``{type: parallel_transformer, ...}`` (the plain L-layer parallel transformer that ``discretise`` exports and
that the reproduction trains from scratch as the untied baseline) launch through
``qkvflow_jax.main.train``; ``gpt2`` and ``llama`` are levanter's own baselines.
"""

from dataclasses import dataclass, field

import equinox as eqx
import jax
from haliax import Axis
from levanter.layers.attention import AttentionBackend
from levanter.layers.rotary import DefaultRotaryEmbeddingsConfig, RotaryEmbeddingsConfig
from levanter.models.lm_model import LmConfig
from levanter.utils.flop_utils import lm_flops_per_token

from .solvers import SolverConfig
from .units import HYPER_INITS, HypernetInit

TIME_GRIDS = ("uniform", "random_shift")
TIME_FEATURE_DTYPES = ("float32", "compute")
WEIGHT_GENERATIONS = ("batched", "per_step")
LLAMA_MLP_NORMS = ("stacked", "residual")
# vocabulary sizes of the tokenizers the paper configs name, for building abstract models offline
KNOWN_VOCAB_SIZES = {"gpt2": 50257, "bytes": 257, "meta-llama/Llama-2-7b-hf": 32000,
                     "NousResearch/Llama-2-7b-hf": 32000}


def _check_positive(prefix: str, **values):
    for name, value in values.items():
        if value is None or value < 1:
            raise ValueError(f"{prefix}.{name} must be >= 1, got {value}")


def _check_prob(prefix: str, **values):
    for name, value in values.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{prefix}.{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class _TransformerShape:
    """Width, depth and heads shared by every qkvflow model config."""

    max_seq_len: int = 1024
    hidden_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02  # std of the hypernetwork weights U1, U2, A (and of the baseline Linears)
    gradient_checkpointing: bool = True

    def _check_shape(self):
        _check_positive("model", max_seq_len=self.max_seq_len, hidden_dim=self.hidden_dim,
                        num_layers=self.num_layers, num_heads=self.num_heads)
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"model.num_heads ({self.num_heads}) must divide model.hidden_dim ({self.hidden_dim})")

    @property
    def Embed(self) -> Axis:
        return Axis("embed", self.hidden_dim)

    Heads = property(lambda self: Axis("heads", self.num_heads))
    HeadSize = property(lambda self: Axis("head_size", self.hidden_dim // self.num_heads))
    Layers = property(lambda self: Axis("layers", self.num_layers))


@dataclass(frozen=True)
class _GptBlockShape(_TransformerShape):
    """The GPT-style parallel block (fused qkv, GELU MLP of ``mlp_scale`` x width, learned positions) shared by
    DiffEqFormer and the plain parallel transformer."""

    mlp_scale: int = 4
    use_bias: bool = True
    embed_pdrop: float = 0.1
    resid_pdrop: float = 0.1
    attn_pdrop: float = 0.0
    token_init_std: float = 0.02
    position_init_std: float = 0.01
    # levanter's attention kernels: VANILLA materialises the scores (the reference's choice); None picks the
    # platform's default as levanter's GPT-2 does (JAX flash attention on CPU, TransformerEngine on GPU, Splash on
    # TPU). Every backend computes the same function.
    attn_backend: AttentionBackend | None = AttentionBackend.VANILLA
    flash_attention_block_size: int | None = None

    def _check_gpt_block(self):
        self._check_shape()
        _check_positive("model", mlp_scale=self.mlp_scale)
        _check_prob("model", embed_pdrop=self.embed_pdrop, resid_pdrop=self.resid_pdrop, attn_pdrop=self.attn_pdrop)

    Qkv = property(lambda self: Axis("qkv", 3))
    Mlp = property(lambda self: Axis("mlp", self.hidden_dim * self.mlp_scale))


@dataclass(frozen=True)
class _TimeConfig:
    """The hypernetwork and the integration of the continuous models (spec §1.2-1.5, §6 F2, §7)."""

    sinusoidal_dim: int = 128  # K: phi(t) has 2K+1 entries
    time_embed_dim: int = 20  # d: width of every unit's time MLP and of e(t)
    time_scale: float = 1000.0
    time_max_period: float = 10000.0
    hypernetwork: bool = True  # False: static W0 ~ N(0, std^2), biases and norms (the weight-tied parallel baseline)
    hyper_init: str = "reference"  # "scaled": W(t), b(t), LN modulation at the discrete model's scale (units.py)
    time_features_dtype: str = "float32"  # "compute" reproduces reference bug F2 (t, phi in bf16)
    time_grid: str = "uniform"  # "random_shift": randomised training grid (§7.2); evaluation stays uniform
    solver: SolverConfig = field(default_factory=SolverConfig)
    # euler_scan: "batched" generates W(tau_i) for every step in one batched product before the loop (and its
    # gradient once after it); "per_step" inside each rematerialised step, as the reference (twice per train step)
    weight_generation: str = "batched"
    hyper_bias_init_std: float = 1e-4  # B ~ hyper_bias_init_std * N(0, 1) (reference; / sqrt(d) under scaled)

    def _check_time(self, dropouts: dict[str, float]):
        _check_positive("model", sinusoidal_dim=self.sinusoidal_dim, time_embed_dim=self.time_embed_dim)
        if self.time_features_dtype not in TIME_FEATURE_DTYPES:
            raise ValueError(f"model.time_features_dtype must be one of {TIME_FEATURE_DTYPES}, "
                             f"got {self.time_features_dtype!r}")
        if self.hyper_init not in HYPER_INITS:
            raise ValueError(f"model.hyper_init must be one of {HYPER_INITS}, got {self.hyper_init!r}")
        if self.weight_generation not in WEIGHT_GENERATIONS:
            raise ValueError(f"model.weight_generation must be one of {WEIGHT_GENERATIONS}, "
                             f"got {self.weight_generation!r}")
        if self.time_grid not in TIME_GRIDS:
            raise ValueError(f"model.time_grid must be one of {TIME_GRIDS}, got {self.time_grid!r}")
        if self.time_grid != "uniform" and self.solver.uses_diffrax:
            raise ValueError("model.time_grid: random_shift works only with model.solver.name: euler_scan")
        if self.solver.uses_diffrax and any(dropouts.values()):
            raise ValueError(f"model.solver.name {self.solver.name!r} needs a deterministic field: set "
                             f"{', '.join('model.' + k for k in dropouts)} to 0")

    TimeFeat = property(lambda self: Axis("time_feat", 2 * self.sinusoidal_dim + 1))
    TimeEmbed = property(lambda self: Axis("time_embed", self.time_embed_dim))

    def hypernet_init(self) -> HypernetInit:
        """The initial standard deviations of the time-dependent units (``hyper_init``, ``initializer_range``)."""
        return HypernetInit.of(self.hyper_init, self.TimeFeat, self.TimeEmbed, self.initializer_range,
                               self.hyper_bias_init_std)


@LmConfig.register_subclass("diffeqformer")
@dataclass(frozen=True)
class DiffEqFormerConfig(_TimeConfig, _GptBlockShape, LmConfig):
    """DiffEqFormer, GPT variant (spec §1): parallel block, tied embeddings, Euler over L = num_layers steps.

    Dropout: ``embed_pdrop`` after the embeddings, ``resid_pdrop`` on each branch, ``attn_pdrop`` on the
    attention probabilities (the reference configured 0.1 but never applied it, F6; paper YAMLs set 0).
    """

    def __post_init__(self):
        self._check_gpt_block()
        self._check_time({"embed_pdrop": self.embed_pdrop, "resid_pdrop": self.resid_pdrop,
                          "attn_pdrop": self.attn_pdrop})

    def flops_per_token(self, vocab_size: int, context_length: int) -> float:
        """Forward FLOPs per token, levanter's formula for the GPT-2 of equal width and depth: each Euler step does
        a parallel block's per-token work. The weight generation (2 d In Out FLOPs per unit and step, once per
        batch, not per token) is overhead, not model FLOPs, as rematerialisation is."""
        return lm_flops_per_token(hidden_dim=self.hidden_dim, intermediate_dim=self.hidden_dim * self.mlp_scale,
                                  num_layers=self.num_layers, num_kv_heads=self.num_heads, num_heads=self.num_heads,
                                  seq_len=context_length, vocab_size=vocab_size, glu=False)

    @property
    def model_type(self):
        from .model import DiffEqFormerLMHeadModel

        return DiffEqFormerLMHeadModel


@LmConfig.register_subclass("diffeqformer_llama")
@dataclass(frozen=True)
class DiffEqFormerLlamaConfig(_TimeConfig, _TransformerShape, LmConfig):
    """DiffEqFormer, Llama variant (spec §1.8): q/k/v/o units with RoPE, SwiGLU from gate/up/down units, all
    bias-free; time-dependent RMSNorm with a time bias (``rmsnorm_time_bias``); static final RMSNorm; untied
    lm_head. Reference quirks kept by default: ``llama_mlp_norm: stacked`` (the MLP reads RMS^m(RMS^a(x))) and
    a token embedding of std ``embed_init_std`` = 1.0."""

    max_seq_len: int = 2048
    hidden_dim: int = 2048
    intermediate_dim: int = 8192
    num_layers: int = 16
    num_heads: int = 16
    sinusoidal_dim: int = 256
    time_embed_dim: int = 96
    rmsnorm_time_bias: bool = True
    llama_mlp_norm: str = "stacked"
    embed_init_std: float = 1.0
    lm_head_init_std: float = 0.02
    rope: RotaryEmbeddingsConfig = field(default_factory=DefaultRotaryEmbeddingsConfig)

    def __post_init__(self):
        self._check_shape()
        _check_positive("model", intermediate_dim=self.intermediate_dim)
        if self.llama_mlp_norm not in LLAMA_MLP_NORMS:
            raise ValueError(f"model.llama_mlp_norm must be one of {LLAMA_MLP_NORMS}, got {self.llama_mlp_norm!r}")
        self._check_time({})

    Mlp = property(lambda self: Axis("mlp", self.intermediate_dim))

    @property
    def model_type(self):
        from .llama import DiffEqFormerLlamaLMHeadModel

        return DiffEqFormerLlamaLMHeadModel


@LmConfig.register_subclass("parallel_transformer")
@dataclass(frozen=True)
class ParallelTransformerConfig(_GptBlockShape, LmConfig):
    """A plain L-layer parallel transformer with residual 1/L (spec §2): x <- x + (1/L)(Attn_i + MLP_i).

    Untied per-layer weights stacked on ``layers``; what ``discretise`` exports and full/LoRA fine-tuning train.
    Trained from scratch it is the reproduction's "untied parallel" arm (N(0, 0.02^2) weights, zero biases).
    """

    def __post_init__(self):
        self._check_gpt_block()

    @property
    def model_type(self):
        from .discrete import DiscreteParallelTransformer

        return DiscreteParallelTransformer


def vocab_size_of(tokenizer: str) -> int:
    """Vocabulary size of a tokenizer the configs name, known offline."""
    if tokenizer not in KNOWN_VOCAB_SIZES:
        raise ValueError(f"data.tokenizer {tokenizer!r} has no offline vocabulary size; known: "
                         f"{sorted(KNOWN_VOCAB_SIZES)}")
    return KNOWN_VOCAB_SIZES[tokenizer]


def abstract_lm(config):
    """The abstract (shape-only) model of a launch config with ``data.tokenizer`` and ``model`` (for tests)."""
    Vocab = Axis("vocab", vocab_size_of(config.data.tokenizer))
    return eqx.filter_eval_shape(lambda: config.model.build(Vocab, key=jax.random.PRNGKey(0)))
