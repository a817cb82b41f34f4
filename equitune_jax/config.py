"""Config dataclasses of the equitune experiments and the abstract-model builders the config tests use."""

import itertools
import math
from dataclasses import dataclass, field

import equinox as eqx
import jax
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.trainer import TrainerConfig

from common_jax.data.augment import AugmentConfig
from common_jax.data.images import ImageDataConfig
from common_jax.main.train_classifier import TrainClassifierConfig
from common_jax.main.train_classifier import abstract_model as abstract_classifier
from common_jax.training import sgd  # noqa: F401  (registers optimizer type "sgd")
from common_jax.training.run_setup import default_trainer_config

from . import groups as G
from .data import scan as scan_data
from .data.multi_view import MultiViewSplits, load_multi_view
from .invariant_maps import OrbitCollapse
from .models import equitune_vit  # noqa: F401  (registers the "equitune_vit" classifier type)
from .models.seq2seq_gru import GruSeq2Seq
from .models.seq2seq_transformer import TransformerSeq2Seq
from .models.view_cnn import ENCODER_ARCHS, multi_view_cnn, multi_view_design1, paper_cnn_blocks
from .scan_symmetry import REFERENCE_REPRESENTATIVES, SCAN_FACTORS

IMAGE_GROUPS = {"rot90": G.rot90, "hflip": G.hflip, "vflip": G.vflip, "d4": G.d4}
MULTI_VIEW_MODELS = ("cnn", "cnn_aug", "design1", "product_equitune")
SCAN_METHODS = ("equitune", "multi_equitune")
SEQ2SEQ_TYPES = ("gru", "transformer")


def _positive(prefix: str, obj, names) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ValueError(f"{prefix}.{name} must be positive, got {getattr(obj, name)}")


def image_group(name: str, field_name: str = "groups") -> G.ImageGroup:
    if name not in IMAGE_GROUPS:
        raise ValueError(f"{field_name}: unknown image group {name!r}; choose from {tuple(IMAGE_GROUPS)}")
    return IMAGE_GROUPS[name]()


def _adam(lr: float) -> AdamConfig:
    return AdamConfig(learning_rate=lr, weight_decay=0.0, warmup=0.0, lr_schedule="constant")


def _trainer(steps: int, batch: int) -> TrainerConfig:
    trainer = default_trainer_config()
    trainer.num_train_steps, trainer.train_batch_size = steps, batch
    return trainer


# ------------------------------------------------------------------------------------------ multi-view


@dataclass(frozen=True)
class ViewModelConfig:
    """φ (and ψ) by ``arch``, head linear(hidden) → ReLU → linear(classes); ``fusion`` adds design 1's IS coupling
    through ψ.

    - ``small``: conv3×3(width, /2) → ReLU → conv3×3(width, /2) → ReLU → linear(features) → ReLU.
    - ``paper`` (spec §6.1): [conv5×5(width) → ReLU → maxpool2 → norm] × 2 (× 3 at image_size >= 64) → linear
      (features) → ReLU → dropout → norm, with LayerNorm instead of the paper's BatchNorm (levanter's Trainer has
      no mutable model state for running statistics: a documented deviation).
    """

    arch: str = "small"  # small | paper
    image_size: int = 28
    num_channels: int = 1
    num_classes: int = 10
    width: int = 8
    features: int = 32
    hidden: int = 64
    dropout: float = 0.5  # paper arch only
    fusion: bool = True
    coupling: float = 0.1

    def __post_init__(self):
        if self.arch not in ENCODER_ARCHS:
            raise ValueError(f"model.arch must be one of {ENCODER_ARCHS}, got {self.arch!r}")
        _positive("model", self, ("image_size", "num_channels", "num_classes", "width", "features", "hidden"))
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.arch == "paper":
            paper_cnn_blocks(self.image_size)


@dataclass
class MultiViewConfig:
    """N views, one image group per view, the four model families (spec §9.1 on mnist10k, §6.1 on HF images).

    ``data.source: mnist10k`` draws ``train_tuples``/``test_tuples`` random tuples; ``data.source: hf`` splits
    ``data.train_split`` ``1 - test_fraction``/``test_fraction`` with ``split_seed`` and groups consecutive
    same-class images. ``augment`` (e.g. padded random crop + flip) applies to every view in training.
    ``train_epochs`` (if set) replaces ``trainer.num_train_steps`` by ceil(epochs · train tuples / batch).
    """

    groups: list[str] = field(default_factory=lambda: ["rot90", "hflip"])
    models: list[str] = field(default_factory=lambda: list(MULTI_VIEW_MODELS))
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    train_tuples: int = 6000  # mnist10k only
    test_tuples: int = 2000  # mnist10k only
    test_fraction: float = 0.2  # hf only
    split_seed: int = 1234  # hf only
    data_seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train_epochs: int | None = None
    model: ViewModelConfig = field(default_factory=ViewModelConfig)
    trainer: TrainerConfig = field(default_factory=lambda: _trainer(400, 64))
    optimizer: OptimizerConfig = field(default_factory=lambda: _adam(3e-3))
    finetune_steps: int = 150
    finetune_optimizer: OptimizerConfig = field(default_factory=lambda: _adam(1e-3))
    eval_batch_size: int = 250

    def __post_init__(self):
        if len(self.groups) < 2:
            raise ValueError(f"groups must name one image group per view (at least 2), got {self.groups}")
        for name in self.groups:
            image_group(name)
        unknown = [m for m in self.models if m not in MULTI_VIEW_MODELS]
        if unknown:
            raise ValueError(f"models: unknown {unknown}; choose from {MULTI_VIEW_MODELS}")
        _positive("config", self, ("train_tuples", "test_tuples", "eval_batch_size"))
        if self.finetune_steps < 0:
            raise ValueError(f"finetune_steps must be >= 0, got {self.finetune_steps}")
        if self.data.source not in ("mnist10k", "hf"):
            raise ValueError(f"data.source must be mnist10k or hf for multi_view, got {self.data.source!r}")
        if self.data.source == "hf" and self.data.image_size != self.model.image_size:
            raise ValueError(f"data.image_size ({self.data.image_size}) must equal model.image_size "
                             f"({self.model.image_size}) for source hf")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.train_epochs is not None and self.train_epochs <= 0:
            raise ValueError(f"train_epochs must be positive, got {self.train_epochs}")

    def view_groups(self) -> tuple[G.ImageGroup, ...]:
        return tuple(image_group(n) for n in self.groups)

    def load_data(self) -> MultiViewSplits:
        """The tuples of ``data``, checked against the model's image shape and class count."""
        splits = load_multi_view(self.view_groups(), self.data_seed, self.data, train_tuples=self.train_tuples,
                                 test_tuples=self.test_tuples, test_fraction=self.test_fraction,
                                 split_seed=self.split_seed)
        m = self.model
        shape, expected = splits.train.views.shape[2:], (m.image_size, m.image_size, m.num_channels)
        if shape != expected:
            raise ValueError(f"model.image_size/model.num_channels expect {expected} images, data gives {shape} "
                             "(set data.image_size / data.image_mode)")
        top = int(max(splits.train.labels.max(), splits.test.labels.max()))
        if top >= m.num_classes:
            raise ValueError(f"model.num_classes is {m.num_classes} but the data has label {top}")
        return splits

    def train_steps(self, num_train_tuples: int) -> int:
        """``trainer.num_train_steps``, or ceil(train_epochs · tuples / batch) when ``train_epochs`` is set."""
        if self.train_epochs is None:
            return self.trainer.num_train_steps
        return math.ceil(self.train_epochs * num_train_tuples / self.trainer.train_batch_size)

    def build(self, name: str, *, key):
        m, n = self.model, len(self.groups)
        if name == "design1":
            return multi_view_design1(self.view_groups(), m.image_size, m.num_channels, m.width, m.features, m.hidden,
                                      m.num_classes, fusion=m.fusion, coupling=m.coupling, arch=m.arch,
                                      dropout=m.dropout, key=key)
        return multi_view_cnn(n, m.image_size, m.num_channels, m.width, m.features, m.hidden, m.num_classes,
                              arch=m.arch, dropout=m.dropout, key=key)


def abstract_multi_view(config: MultiViewConfig):
    """Abstract (shape-only) models of every configured family, keyed by name."""
    return {name: eqx.filter_eval_shape(lambda n=name: config.build(n, key=jax.random.PRNGKey(0)))
            for name in ("cnn", "design1")}


# ------------------------------------------------------------------------------------------------- SCAN


@dataclass(frozen=True)
class ScanDataConfig:
    variant: str = "scan_mini"  # scan | scan2 (SCAN-II) | scan_mini
    split: str = "turn_up_jump_turn_left"
    primitive_fraction: float = 0.02  # each held-out primitive repeated this × |train| (SCAN-II reference: 0.06)
    max_test_examples: int | None = None  # decode a seeded subset of the union of the test splits (None: all)

    def __post_init__(self):
        if self.variant not in scan_data.VARIANTS:
            raise ValueError(f"data.variant must be one of {tuple(scan_data.VARIANTS)}, got {self.variant!r}")
        if not 0 <= self.primitive_fraction < 1:
            raise ValueError(f"data.primitive_fraction must be in [0, 1), got {self.primitive_fraction}")


@dataclass(frozen=True)
class Seq2SeqConfig:
    type: str = "gru"  # gru | transformer
    embed_dim: int = 64
    hidden: int = 64  # GRU encoder hidden (decoder 2×)
    num_heads: int = 4
    mlp_dim: int = 128
    num_layers: int = 2
    dropout: float = 0.0

    def __post_init__(self):
        if self.type not in SEQ2SEQ_TYPES:
            raise ValueError(f"model.type must be one of {SEQ2SEQ_TYPES}, got {self.type!r}")
        _positive("model", self, ("embed_dim", "hidden", "num_heads", "mlp_dim", "num_layers"))
        if self.type == "transformer" and self.embed_dim % self.num_heads:
            raise ValueError(f"model.num_heads ({self.num_heads}) must divide model.embed_dim ({self.embed_dim})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")

    def build(self, max_source: int, max_target: int, *, key):
        vin, vout = len(scan_data.IN_VOCAB), len(scan_data.OUT_VOCAB)
        if self.type == "gru":
            return GruSeq2Seq(vin, vout, self.embed_dim, self.hidden, self.dropout, key=key)
        return TransformerSeq2Seq(vin, vout, self.embed_dim, self.num_heads, self.mlp_dim, self.num_layers,
                                  max_source, max_target, key=key)


@dataclass(frozen=True)
class ScanGroupsConfig:
    factors: tuple[str, ...] = ("verb", "rl", "ud")
    representatives: dict[str, str] = field(default_factory=lambda: dict(REFERENCE_REPRESENTATIVES))

    def __post_init__(self):
        for name in self.factors:
            if name not in SCAN_FACTORS:
                raise ValueError(f"groups.factors: unknown SCAN factor {name!r}; choose from {tuple(SCAN_FACTORS)}")
            if self.representatives.get(name) not in SCAN_FACTORS[name]:
                raise ValueError(f"groups.representatives.{name} must be one of {SCAN_FACTORS[name]}, "
                                 f"got {self.representatives.get(name)!r}")


@dataclass
class ScanConfig:
    """Pretrain a seq2seq model, then fine-tune equitune and multi-equitune (design 2) copies of it."""

    data: ScanDataConfig = field(default_factory=ScanDataConfig)
    model: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)
    groups: ScanGroupsConfig = field(default_factory=ScanGroupsConfig)
    methods: list[str] = field(default_factory=lambda: list(SCAN_METHODS))
    trainer: TrainerConfig = field(default_factory=lambda: _trainer(1000, 64))
    optimizer: AdamConfig = field(default_factory=lambda: _adam(3e-3))
    finetune_steps: int = 100
    finetune_optimizer: AdamConfig = field(default_factory=lambda: _adam(1e-3))
    decode_mode: str = "joint"
    eval_batch_size: int = 512
    data_seed: int = 0

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in SCAN_METHODS]
        if unknown:
            raise ValueError(f"methods: unknown {unknown}; choose from {SCAN_METHODS}")
        if self.decode_mode != "joint":
            raise ValueError(f"decode_mode must be 'joint' (the only exact mode implemented), got {self.decode_mode!r}")
        if self.finetune_steps < 0:
            raise ValueError(f"finetune_steps must be >= 0, got {self.finetune_steps}")
        _positive("config", self, ("eval_batch_size",))


def abstract_scan(config: ScanConfig):
    max_source, max_target = scan_data.max_lengths(scan_data.generate(config.data.variant))
    return eqx.filter_eval_shape(lambda: config.model.build(max_source, max_target, key=jax.random.PRNGKey(0)))


# -------------------------------------------------------------------------------------------- GPT-2


@dataclass
class Gpt2FairnessConfig:
    """Demographic swap groups on GPT-2 (spec §3 "GPT-2 demographic swaps", §6.3).

    ``word_sets``: each set is one factor, a cyclic permutation of its words' token ids; every word has a
    leading space and must be ONE GPT-2 token. Multi-equitune collapses the other factors onto their first word.
    """

    model_path: str = "gpt2"  # an HF hub name or a local folder in the HF layout
    tokenizer: str = "gpt2"  # "gpt2" = the embedded GPT-2 BPE; else an HF name or folder
    word_sets: list[list[str]] = field(default_factory=lambda: [[" man", " woman"], [" Black", " White"]])
    methods: list[str] = field(default_factory=lambda: ["equitune", "multi_equitune"])
    window: int = 128
    perplexity_windows: int = 16
    perplexity_chars: int = 200_000
    max_prompts: int | None = None  # evaluate the first N regard prompts (None: all 10 contexts x subjects)
    sampled_prompts: int = 4
    new_tokens: int = 15
    top_k: int = 40
    seed: int = 0
    trainer: TrainerConfig = field(default_factory=default_trainer_config)

    def __post_init__(self):
        if len(self.word_sets) < 1 or any(len(s) < 2 for s in self.word_sets):
            raise ValueError(f"word_sets must hold sets of at least two words, got {self.word_sets}")
        unknown = [m for m in self.methods if m not in SCAN_METHODS]
        if unknown:
            raise ValueError(f"methods: unknown {unknown}; choose from {SCAN_METHODS}")
        _positive("config", self, ("window", "perplexity_windows", "new_tokens", "top_k"))

    def tokenizer_path(self) -> str:
        from common_jax.data.tokenizers import local_tokenizer

        return local_tokenizer(self.tokenizer)

    def subject_combinations(self) -> list[tuple[str, ...]]:
        """Every intersectional subject, e.g. (" Black", " man"), later factors first ("The Black man")."""
        return [tuple(reversed(c)) for c in itertools.product(*self.word_sets)]

    def token_ids(self, tokenizer) -> list[list[int]]:
        ids = []
        for k, words in enumerate(self.word_sets):
            row = []
            for w in words:
                tokens = tokenizer(w)["input_ids"]
                if len(tokens) != 1 or not w.startswith(" "):
                    raise ValueError(f"word_sets[{k}]: {w!r} must start with a space and be one token, got {tokens}")
                row.append(tokens[0])
            ids.append(row)
        return ids

    def swap_groups(self, tokenizer):
        """(factor groups, design-2 collapse maps) over the tokenizer's vocabulary."""
        vocab = len(tokenizer)
        ids = self.token_ids(tokenizer)
        factors = [G.vocab_permutation(vocab, [row], name=f"set{k}") for k, row in enumerate(ids)]
        collapses = []
        for i in range(len(factors)):
            others = [j for j in range(len(factors)) if j != i]
            collapses.append(OrbitCollapse.of([factors[j] for j in others], [ids[j][0] for j in others],
                                              [ids[j][0] for j in others]) if others else None)
        return factors, tuple(collapses)


def abstract_gpt2(config: Gpt2FairnessConfig):
    """The GPT-2 small architecture's parameter shapes (no weights are read)."""
    from transformers import FlaxGPT2LMHeadModel, GPT2Config

    model = FlaxGPT2LMHeadModel(GPT2Config(), _do_init=False)
    return jax.eval_shape(lambda: model.init_weights(jax.random.PRNGKey(0), model.input_shape))



# --------------------------------------------------------------------------------------------- CLIP

CLIP_METHODS = ("vanilla", "equitune", "equizero", "multi_equitune", "multi_equizero")
CLIP_TRANSFORMS = ("none", "flip", "rot90", "rot90_flip", "random")
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@dataclass
class ClipZeroshotConfig:
    """CLIP zero-shot under rot90 × vflip ("flip" is vertical, as in the reference, spec §3)."""

    model_path: str = "openai/clip-vit-base-patch32"
    tokenizer_path: str | None = None  # defaults to model_path
    class_names: list[str] = field(default_factory=lambda: list(DIGIT_NAMES))
    templates: list[str] = field(default_factory=lambda: ["a photo of the number {}.", "a drawing of a {}."])
    methods: list[str] = field(default_factory=lambda: list(CLIP_METHODS))
    transforms: list[str] = field(default_factory=lambda: ["none", "rot90_flip", "random"])
    equizero_mode: str = "classwise_max"
    logit_factor: float = 1.0  # the reference's 1.0 (not 100): softmax near uniform, a mean ≈ a cosine mean
    canon_seed: int = 0
    max_images: int = 2000
    batch_size: int = 64
    seed: int = 0
    trainer: TrainerConfig = field(default_factory=default_trainer_config)

    def __post_init__(self):
        for name, values, allowed in (("methods", self.methods, CLIP_METHODS),
                                      ("transforms", self.transforms, CLIP_TRANSFORMS)):
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}; choose from {allowed}")
        if self.equizero_mode not in ("select", "classwise_max"):
            raise ValueError(f"equizero_mode must be 'select' or 'classwise_max', got {self.equizero_mode!r}")
        if any("{}" not in t for t in self.templates):
            raise ValueError("templates must each contain '{}' for the class name")
        _positive("config", self, ("max_images", "batch_size"))


def abstract_clip(config: ClipZeroshotConfig):
    """The CLIP ViT-B/32 architecture's parameter shapes (no weights are read)."""
    from transformers import CLIPConfig, FlaxCLIPModel

    model = FlaxCLIPModel(CLIPConfig(), _do_init=False)
    return jax.eval_shape(lambda: model.init_weights(jax.random.PRNGKey(0), model.input_shape))


# ``{glob under configs/: (config class, abstract-model builder)}`` for tests/config_entrypoints.py
ENTRYPOINTS = {
    "equitune/multi_view*.yaml": (MultiViewConfig, abstract_multi_view),
    "equitune/multi_image_*.yaml": (MultiViewConfig, abstract_multi_view),
    "equitune/scan*.yaml": (ScanConfig, abstract_scan),
    "equitune/gpt2_*.yaml": (Gpt2FairnessConfig, abstract_gpt2),
    "equitune/clip_*.yaml": (ClipZeroshotConfig, abstract_clip),
    "equitune/vit_*.yaml": (TrainClassifierConfig, abstract_classifier),
}
