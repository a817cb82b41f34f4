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
from . import optim  # noqa: F401  (registers optimizer type "torch_adam")
from .data import scan as scan_data
from .data.clip_data import CLIP_GROUPS, DRAWS, PROMPT_SETS, TRANSFORMS, ClipDataConfig, load_prompts
from .data.multi_view import MultiViewSplits, load_multi_view
from .decoding import DECODE_MODES
from .invariant_maps import OrbitCollapse
from .models import equitune_vit  # noqa: F401  (registers the "equitune_vit" classifier type)
from .models.batch_norm import NORMS
from .models.seq2seq_rnn import CELLS, DECODERS, RnnSeq2Seq
from .models.seq2seq_transformer import TransformerSeq2Seq
from .models.view_cnn import ENCODER_ARCHS, multi_view_cnn, multi_view_design1, paper_cnn_blocks
from .scan_symmetry import REFERENCE_REPRESENTATIVES, SCAN_FACTORS
from .wrappers import BRANCH_WEIGHTINGS, FUSION_RULES

IMAGE_GROUPS = {"id": G.identity, "rot90": G.rot90, "hflip": G.hflip, "vflip": G.vflip, "d4": G.d4}
MULTI_VIEW_MODELS = ("cnn", "cnn_aug", "design1", "product_equitune")
TUPLE_ORDERS = ("dataset", "split")
SCAN_METHODS = ("equitune", "multi_equitune")
SEQ2SEQ_TYPES = ("rnn", "transformer")
TOKEN_LOSSES = ("mean", "sum")


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
    """φ (and ψ) by ``arch``, head linear(hidden) → ReLU → dropout(``head_dropout``) → linear(classes); ``fusion``
    adds design 1's IS coupling through ψ, combined by ``fusion_rule``.

    - ``small``: conv3×3(width, /2) → ReLU → conv3×3(width, /2) → ReLU → linear(features) → ReLU.
    - ``paper`` (spec §6.1): [conv5×5(width) → ReLU → maxpool2 → norm] × 2 (× 3 at image_size >= 64) → linear
      (features) → ReLU → dropout → norm, with ``norm: batch`` (the reference's BatchNorm, batch statistics in training
      and population statistics from ``bn_calibration_batches`` training batches afterwards) or ``norm: layer``.
    - ``fusion_rule``: ``sum_others`` (y_i = e_i + c·Σ_{j≠i} f_j, the paper's design 1) or ``reference``
      (y_i = (e_i + c·(mean_j f_j − e_i)) / (1 + c), the reference's trained ``Gemini``).
    """

    arch: str = "small"  # small | paper
    image_size: int = 28
    num_channels: int = 1
    num_classes: int = 10
    width: int = 8
    features: int = 32
    hidden: int = 64
    dropout: float = 0.5  # paper arch only
    head_dropout: float = 0.0
    norm: str = "layer"  # layer | batch (paper arch only)
    bn_calibration_batches: int = 20
    fusion: bool = True
    fusion_rule: str = "sum_others"  # sum_others | reference
    coupling: float = 0.1

    def __post_init__(self):
        if self.arch not in ENCODER_ARCHS:
            raise ValueError(f"model.arch must be one of {ENCODER_ARCHS}, got {self.arch!r}")
        _positive("model", self, ("image_size", "num_channels", "num_classes", "width", "features", "hidden",
                                  "bn_calibration_batches"))
        for name in ("dropout", "head_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.norm not in NORMS:
            raise ValueError(f"model.norm must be one of {NORMS}, got {self.norm!r}")
        if self.norm == "batch" and self.arch != "paper":
            raise ValueError("model.norm: batch needs model.arch: paper (the small encoder has no normalisation)")
        if self.fusion_rule not in FUSION_RULES:
            raise ValueError(f"model.fusion_rule must be one of {FUSION_RULES}, got {self.fusion_rule!r}")
        if self.arch == "paper":
            paper_cnn_blocks(self.image_size)


@dataclass
class MultiViewConfig:
    """N views, one image group per view, the four model families (spec §9.1 on mnist10k, §6.1 on HF images).

    ``data.source: mnist10k`` draws ``train_tuples``/``test_tuples`` random tuples; ``data.source: hf`` splits
    ``data.train_split`` ``1 - test_fraction``/``test_fraction`` with ``split_seed`` and groups consecutive
    same-class images, in the split's random order (``tuple_order: split``, the reference) or in dataset order.
    ``augment`` (e.g. padded random crop + flip) applies to every view in training, on the [0, 1] image before
    ``data.mean``/``data.std`` normalisation, as torchvision does. ``train_augment_groups`` (one image group per view,
    e.g. [rot90, rot90]) adds a random group element per view in training for every model (the reference's train-aug
    columns); ``test_groups`` (default ``groups``) draws the "transformed" test. ``train_epochs`` (if set) replaces
    ``trainer.num_train_steps`` by epochs · ceil(train tuples / batch); ``eval_every_epoch`` records the test accuracy
    after every epoch and reports its best as ``reference_metric`` (the reference's metric, selected on the test set).
    """

    groups: list[str] = field(default_factory=lambda: ["rot90", "hflip"])
    models: list[str] = field(default_factory=lambda: list(MULTI_VIEW_MODELS))
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    train_tuples: int = 6000  # mnist10k only
    test_tuples: int = 2000  # mnist10k only
    test_fraction: float = 0.2  # hf only
    split_seed: int = 1234  # hf only
    tuple_order: str = "dataset"  # hf only: dataset | split (the reference)
    data_seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train_augment_groups: list[str] | None = None
    test_groups: list[str] | None = None
    train_epochs: int | None = None
    eval_every_epoch: bool = False
    model: ViewModelConfig = field(default_factory=ViewModelConfig)
    trainer: TrainerConfig = field(default_factory=lambda: _trainer(400, 64))
    optimizer: OptimizerConfig = field(default_factory=lambda: _adam(3e-3))
    finetune_steps: int = 150
    finetune_optimizer: OptimizerConfig = field(default_factory=lambda: _adam(1e-3))
    eval_batch_size: int = 250

    def __post_init__(self):
        if len(self.groups) < 2:
            raise ValueError(f"groups must name one image group per view (at least 2), got {self.groups}")
        for field_name in ("groups", "train_augment_groups", "test_groups"):
            names = getattr(self, field_name)
            for name in names or ():
                image_group(name, field_name)
            if names is not None and len(names) != len(self.groups):
                raise ValueError(f"{field_name} must name one group per view ({len(self.groups)}), got {names}")
        unknown = [m for m in self.models if m not in MULTI_VIEW_MODELS]
        if unknown:
            raise ValueError(f"models: unknown {unknown}; choose from {MULTI_VIEW_MODELS}")
        if self.model.norm == "batch" and "product_equitune" in self.models:
            raise ValueError("models: product_equitune is not supported with model.norm: batch (its fine-tuning would "
                             "need the statistics of the product orbit); use model.norm: layer")
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
        if self.tuple_order not in TUPLE_ORDERS:
            raise ValueError(f"tuple_order must be one of {TUPLE_ORDERS}, got {self.tuple_order!r}")
        if self.train_epochs is not None and self.train_epochs <= 0:
            raise ValueError(f"train_epochs must be positive, got {self.train_epochs}")

    def view_groups(self) -> tuple[G.ImageGroup, ...]:
        return tuple(image_group(n) for n in self.groups)

    def augment_groups(self) -> tuple[G.ImageGroup, ...] | None:
        return None if self.train_augment_groups is None else tuple(image_group(n) for n in self.train_augment_groups)

    def transform_groups(self) -> tuple[G.ImageGroup, ...]:
        return self.view_groups() if self.test_groups is None else tuple(image_group(n) for n in self.test_groups)

    def load_data(self) -> MultiViewSplits:
        """The tuples of ``data``, checked against the model's image shape and class count."""
        splits = load_multi_view(self.transform_groups(), self.data_seed, self.data, train_tuples=self.train_tuples,
                                 test_tuples=self.test_tuples, test_fraction=self.test_fraction,
                                 split_seed=self.split_seed, tuple_order=self.tuple_order)
        m = self.model
        shape, expected = splits.train.views.shape[2:], (m.image_size, m.image_size, m.num_channels)
        if shape != expected:
            raise ValueError(f"model.image_size/model.num_channels expect {expected} images, data gives {shape} "
                             "(set data.image_size / data.image_mode)")
        top = int(max(splits.train.labels.max(), splits.test.labels.max()))
        if top >= m.num_classes:
            raise ValueError(f"model.num_classes is {m.num_classes} but the data has label {top}")
        return splits

    def steps_per_epoch(self, num_train_tuples: int) -> int:
        """ceil(tuples / batch): the batches of one epoch (the reference's loader keeps the last, partial one)."""
        return math.ceil(num_train_tuples / self.trainer.train_batch_size)

    def train_steps(self, num_train_tuples: int) -> int:
        """``trainer.num_train_steps``, or ``train_epochs`` whole epochs of :meth:`steps_per_epoch` when set (so the
        last per-epoch test of ``eval_every_epoch`` sees the final model)."""
        if self.train_epochs is None:
            return self.trainer.num_train_steps
        return self.train_epochs * self.steps_per_epoch(num_train_tuples)

    def build(self, name: str, *, key):
        m, n = self.model, len(self.groups)
        common = {"arch": m.arch, "dropout": m.dropout, "head_dropout": m.head_dropout, "norm": m.norm}
        if name == "design1":
            return multi_view_design1(self.view_groups(), m.image_size, m.num_channels, m.width, m.features, m.hidden,
                                      m.num_classes, fusion=m.fusion, coupling=m.coupling, fusion_rule=m.fusion_rule,
                                      key=key, **common)
        return multi_view_cnn(n, m.image_size, m.num_channels, m.width, m.features, m.hidden, m.num_classes, key=key,
                              **common)


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
    """``type: rnn``: the bidirectional-encoder attention seq2seq of ``models/seq2seq_rnn.py`` with ``cell`` (gru |
    lstm | rnn) and ``decoder`` (``reference``: the reference's BasicSeq2Seq; ``luong``); ``type: transformer``: the
    small encoder-decoder transformer (``num_heads``, ``mlp_dim``, ``num_layers``; no dropout)."""

    type: str = "rnn"  # rnn | transformer
    cell: str = "gru"  # gru | lstm | rnn
    decoder: str = "luong"  # luong | reference
    embed_dim: int = 64  # encoder embedding (and the luong decoder's)
    hidden: int = 64  # encoder hidden per direction; the decoder's is 2x (the reference decoder's embedding too)
    num_heads: int = 4
    mlp_dim: int = 128
    num_layers: int = 2
    dropout: float = 0.0  # RNN decoder input-embedding dropout (the reference's drop_rate 0.1)

    def __post_init__(self):
        if self.type not in SEQ2SEQ_TYPES:
            raise ValueError(f"model.type must be one of {SEQ2SEQ_TYPES}, got {self.type!r}")
        if self.cell not in CELLS:
            raise ValueError(f"model.cell must be one of {CELLS}, got {self.cell!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"model.decoder must be one of {DECODERS}, got {self.decoder!r}")
        _positive("model", self, ("embed_dim", "hidden", "num_heads", "mlp_dim", "num_layers"))
        if self.type == "transformer" and self.embed_dim % self.num_heads:
            raise ValueError(f"model.num_heads ({self.num_heads}) must divide model.embed_dim ({self.embed_dim})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")

    def build(self, max_source: int, max_target: int, *, key):
        vin, vout = len(scan_data.IN_VOCAB), len(scan_data.OUT_VOCAB)
        if self.type == "rnn":
            return RnnSeq2Seq(vin, vout, self.embed_dim, self.hidden, self.dropout, cell=self.cell,
                              decoder=self.decoder, key=key)
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


@dataclass(frozen=True)
class ScanStageConfig:
    """How one stage (pre-training or fine-tuning) trains and which of its models it keeps.

    - ``teacher_forcing_ratio``: the probability that a batch is teacher-forced; otherwise the model (every branch of a
      wrapper) decodes free-running from its own predictions and the loss scores those rows (the reference: 0.5,
      drawn per iteration at batch 1);
    - ``token_loss``: ``mean`` or ``sum`` of the per-token NLL of a sequence (the reference sums);
    - ``validation_fraction``: this share of the training pairs (seeded shuffle) is held out; the model with the best
      validation exact match (strictly better than every earlier one, starting from 0) is kept, checked after
      ``validation_first_step`` updates and every ``validation_every`` updates after it; 0: no validation, the final
      model is kept (also when no check scores above 0).
    """

    teacher_forcing_ratio: float = 1.0
    token_loss: str = "mean"  # mean | sum
    validation_fraction: float = 0.0
    validation_first_step: int = 1000
    validation_every: int = 1000

    def __post_init__(self):
        if not 0 <= self.teacher_forcing_ratio <= 1:
            raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {self.teacher_forcing_ratio}")
        if self.token_loss not in TOKEN_LOSSES:
            raise ValueError(f"token_loss must be one of {TOKEN_LOSSES}, got {self.token_loss!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.validation_first_step < 1 or self.validation_every < 1:
            raise ValueError(f"validation_first_step and validation_every must be >= 1, got "
                             f"{self.validation_first_step} and {self.validation_every}")


@dataclass(frozen=True)
class ScanReferenceCompat:
    """Reference behaviours the port changes by default (spec §6.2), restored one by one:

    - ``scan_split``: the reference's SCAN-II split (``data.scan.split(..., reference=True)``: bare primitives in the
      test lists, floor repeat count, ``all`` the concatenation of the three lists);
    - ``eos_loss_cut``: the training loss stops at the first position where the model's own argmax is <eos>, even under
      teacher forcing (the reference's loop ``break``).
    """

    scan_split: bool = False
    eos_loss_cut: bool = False


@dataclass
class ScanConfig:
    """Pretrain a seq2seq model, then fine-tune equitune and multi-equitune (design 2) copies of it."""

    data: ScanDataConfig = field(default_factory=ScanDataConfig)
    model: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)
    groups: ScanGroupsConfig = field(default_factory=ScanGroupsConfig)
    methods: list[str] = field(default_factory=lambda: list(SCAN_METHODS))
    trainer: TrainerConfig = field(default_factory=lambda: _trainer(1000, 64))
    optimizer: OptimizerConfig = field(default_factory=lambda: _adam(3e-3))
    pretrain: ScanStageConfig = field(default_factory=ScanStageConfig)
    finetune_steps: int = 100
    finetune_optimizer: OptimizerConfig = field(default_factory=lambda: _adam(1e-3))
    finetune: ScanStageConfig = field(default_factory=ScanStageConfig)
    decode_mode: str = "joint"  # joint (exact, step-wise common prefix) | independent (the reference)
    reference_compat: ScanReferenceCompat = field(default_factory=ScanReferenceCompat)
    eval_batch_size: int = 512
    data_seed: int = 0

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in SCAN_METHODS]
        if unknown:
            raise ValueError(f"methods: unknown {unknown}; choose from {SCAN_METHODS}")
        if self.decode_mode not in DECODE_MODES:
            raise ValueError(f"decode_mode must be one of {DECODE_MODES}, got {self.decode_mode!r}")
        if self.finetune_steps < 0:
            raise ValueError(f"finetune_steps must be >= 0, got {self.finetune_steps}")
        if self.reference_compat.scan_split and self.data.split != "turn_up_jump_turn_left":
            raise ValueError("reference_compat.scan_split needs data.split: turn_up_jump_turn_left")
        _positive("config", self, ("eval_batch_size",))


def abstract_scan(config: ScanConfig):
    max_source, max_target = scan_data.max_lengths(scan_data.generate(config.data.variant))
    return eqx.filter_eval_shape(lambda: config.model.build(max_source, max_target, key=jax.random.PRNGKey(0)))


# -------------------------------------------------------------------------------------------- GPT-2

GPT2_METHODS = ("equitune", "multi_equitune", "relaxed_equitune", "relaxed_multi_equitune")


@dataclass
class Gpt2FairnessConfig:
    """Demographic swap groups on GPT-2 (spec §3 "GPT-2 demographic swaps", §6.3).

    ``model_path``: an HF GPT-2 checkpoint (hub id or local folder), loaded as levanter's Equinox ``Gpt2LMHeadModel``
    through ``common_jax.hf.load_pretrained`` (levanter's HF converter). ``word_sets``: each set is one factor, a
    cyclic permutation of its words' token ids; every word has a leading space and must be ONE GPT-2 token.
    Multi-equitune collapses the other factors onto their first word. The relaxed variants (EquiNLG's R-EquiGPT2) are
    equivariant on the swapped words and ``neutral_words`` only, the base model's own scores elsewhere.
    ``regard_classifier`` (an HF sequence-classification checkpoint with labels negative / neutral / positive / other,
    e.g. Sheng et al.'s regard classifier; a local folder works offline) scores every sampled continuation
    (``samples_per_prompt`` per prompt); without it no regard is computed.
    """

    model_path: str = "gpt2"  # an HF hub name or a local folder in the HF layout
    tokenizer: str = "gpt2"  # "gpt2" = the embedded GPT-2 BPE; else an HF name or folder
    word_sets: list[list[str]] = field(default_factory=lambda: [[" man", " woman"], [" Black", " White"],
                                                                [" gay", " straight"]])
    neutral_words: list[str] = field(default_factory=lambda: [
        " doctor", " nurse", " engineer", " teacher", " secretary", " lawyer", " cook", " maid", " manager",
        " worker"])
    methods: list[str] = field(default_factory=lambda: list(GPT2_METHODS))
    window: int = 128
    perplexity_windows: int = 16
    perplexity_chars: int = 200_000
    max_prompts: int | None = None  # evaluate the first N regard prompts (None: all subjects x 10 contexts)
    samples_per_prompt: int = 1
    new_tokens: int = 15
    top_k: int = 40
    regard_classifier: str | None = None
    regard_mask_subject: bool = True  # classify "XYZ ..." in place of the subject, as Sheng et al.'s classifier
    seed: int = 0
    trainer: TrainerConfig = field(default_factory=default_trainer_config)

    def __post_init__(self):
        if len(self.word_sets) < 1 or any(len(s) < 2 for s in self.word_sets):
            raise ValueError(f"word_sets must hold sets of at least two words, got {self.word_sets}")
        unknown = [m for m in self.methods if m not in GPT2_METHODS]
        if unknown:
            raise ValueError(f"methods: unknown {unknown}; choose from {GPT2_METHODS}")
        _positive("config", self, ("window", "perplexity_windows", "new_tokens", "top_k", "samples_per_prompt"))

    def tokenizer_path(self) -> str:
        from common_jax.data.tokenizers import local_tokenizer

        return local_tokenizer(self.tokenizer)

    def subject_combinations(self) -> list[tuple[str, ...]]:
        """Every intersectional subject, e.g. (" gay", " Black", " man"), later factors first ("The gay Black man")."""
        return [tuple(reversed(c)) for c in itertools.product(*self.word_sets)]

    def _single_tokens(self, tokenizer, words, where: str) -> list[int]:
        ids = []
        for w in words:
            tokens = tokenizer(w)["input_ids"]
            if len(tokens) != 1 or not w.startswith(" "):
                raise ValueError(f"{where}: {w!r} must start with a space and be one token, got {tokens}")
            ids.append(tokens[0])
        return ids

    def token_ids(self, tokenizer) -> list[list[int]]:
        return [self._single_tokens(tokenizer, words, f"word_sets[{k}]") for k, words in enumerate(self.word_sets)]

    def equivariant_ids(self, tokenizer) -> list[int]:
        """The tokens the relaxed variants keep equivariant: every swapped word and every neutral word."""
        return sorted({i for row in self.token_ids(tokenizer) for i in row}
                      | set(self._single_tokens(tokenizer, self.neutral_words, "neutral_words")))

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
    """levanter's GPT-2 small (the Equinox model ``model_path: gpt2`` loads into), shapes only (no weights read)."""
    import haliax as hax
    from levanter.models.gpt2 import Gpt2Config, Gpt2LMHeadModel

    return eqx.filter_eval_shape(Gpt2LMHeadModel.init, hax.Axis("vocab", 50257), Gpt2Config(),
                                 key=jax.random.PRNGKey(0))


# --------------------------------------------------------------------------------------------- CLIP

CLIP_METHODS = ("vanilla", "equitune", "equizero", "multi_equitune", "multi_equizero")
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CLIP_RESNETS = ("RN50", "RN101", "RN50x4", "RN50x16", "RN50x64")


@dataclass
class ClipZeroshotConfig:
    """CLIP zero-shot under rot90 × vflip ("flip" is vertical, as in the reference, spec §3, §6.4).

    ``prompt_set`` (``imagenet`` | ``cifar100``) takes the reference's class names and templates from
    ``data/clip_prompts.json``; without it ``class_names`` and ``templates`` are used. ``group`` is the group of
    equitune and equizero (the reference's ``group_name``); multi-equitune / multi-equizero always run rot90 × flip
    (canonicalise over D4, then 4 + 2 passes), their branch means weighted ``branch_weighting`` (``flat``: one mean over
    the 6 softmaxes, the reference; ``per_group``: the paper's average of the two factor means). Test ``transforms``:
    ``data/clip_data.py`` (random ones drawn ``transform_draw`` over batches of ``transform_batch`` images).
    """

    model_path: str = "openai/clip-vit-base-patch32"
    tokenizer_path: str | None = None  # defaults to model_path
    data: ClipDataConfig = field(default_factory=ClipDataConfig)
    prompt_set: str | None = None
    class_names: list[str] = field(default_factory=lambda: list(DIGIT_NAMES))
    templates: list[str] = field(default_factory=lambda: ["a photo of the number {}.", "a drawing of a {}."])
    methods: list[str] = field(default_factory=lambda: list(CLIP_METHODS))
    transforms: list[str] = field(default_factory=lambda: ["none", "rot90_flip_fixed", "rot90_flip"])
    transform_draw: str = "per_batch"  # per_batch (the reference) | per_image
    transform_batch: int = 32
    group: str = "rot90_flip"
    branch_weighting: str = "flat"  # flat (the reference) | per_group
    equizero_mode: str = "classwise_max"
    logit_factor: float = 1.0  # the reference's 1.0 (not 100): softmax near uniform, a mean ≈ a cosine mean
    canon_seed: int = 0
    batch_size: int = 64
    seed: int = 0
    trainer: TrainerConfig = field(default_factory=default_trainer_config)

    def __post_init__(self):
        for name, values, allowed in (("methods", self.methods, CLIP_METHODS),
                                      ("transforms", self.transforms, TRANSFORMS)):
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}; choose from {allowed}")
        resnet = next((r for r in CLIP_RESNETS if self.model_path.rstrip("/").endswith(r)), None)
        if resnet:
            raise ValueError(f"model_path: the CLIP {resnet} (ResNet) towers have no transformers implementation, so "
                             "they cannot run here; use the ViT-B/32 or ViT-B/16 CLIP (openai/clip-vit-base-patch32 / "
                             "-16)")
        if self.equizero_mode not in ("select", "classwise_max"):
            raise ValueError(f"equizero_mode must be 'select' or 'classwise_max', got {self.equizero_mode!r}")
        if self.group not in CLIP_GROUPS:
            raise ValueError(f"group must be one of {tuple(CLIP_GROUPS)}, got {self.group!r}")
        if self.branch_weighting not in BRANCH_WEIGHTINGS:
            raise ValueError(f"branch_weighting must be one of {BRANCH_WEIGHTINGS}, got {self.branch_weighting!r}")
        if self.transform_draw not in DRAWS:
            raise ValueError(f"transform_draw must be one of {DRAWS}, got {self.transform_draw!r}")
        if self.prompt_set is not None and self.prompt_set not in PROMPT_SETS:
            raise ValueError(f"prompt_set must be one of {PROMPT_SETS} or null, got {self.prompt_set!r}")
        if any("{}" not in t for t in self.templates):
            raise ValueError("templates must each contain '{}' for the class name")
        _positive("config", self, ("batch_size", "transform_batch"))
        if self.transform_draw == "per_batch" and self.batch_size % self.transform_batch:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of transform_batch "
                             f"({self.transform_batch}) with transform_draw: per_batch")

    def prompts(self) -> tuple[list[str], list[str]]:
        """(class names, templates)."""
        if self.prompt_set is not None:
            return load_prompts(self.prompt_set)
        return list(self.class_names), list(self.templates)


def abstract_clip(config: ClipZeroshotConfig):
    """The parameter shapes of the CLIP architecture named by ``model_path`` (ViT-B/16 if it names patch 16, else
    ViT-B/32); no weights are read."""
    from transformers import CLIPConfig, CLIPVisionConfig, FlaxCLIPModel

    patch = 16 if "patch16" in config.model_path else 32
    clip_config = CLIPConfig(vision_config=CLIPVisionConfig(patch_size=patch).to_dict())
    model = FlaxCLIPModel(clip_config, _do_init=False)
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
