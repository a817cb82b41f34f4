"""BERT (Devlin et al. 2019): a post-LayerNorm encoder with a masked-LM head, haliax named axes.

``input_ids [..., position] -> logits [..., position, vocab]``. Reuses the project's :class:`Attention`
(separate Q/K/V/O) and :class:`Mlp`. Embeddings: word + position + token type, then LayerNorm and dropout;
block: ``x = ln1(x + attn(x))``, ``x = ln2(x + mlp(x))``; MLM head: dense -> activation -> LayerNorm -> decoder
tied to the word embeddings plus a vocabulary bias (HF ``BertForMaskedLM``'s layout). HF BERT uses one
``hidden_act`` in both places; the defaults here (``gelu_tanh`` in the blocks, exact ``gelu`` in the head) are the
project's original choice, kept so that existing runs reproduce.
"""

from dataclasses import dataclass

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax
from haliax import Axis, NamedArray
from haliax.jax_utils import maybe_rng_split
from haliax.nn.scan import Stacked

from .attention import Attention
from .encoder_shape import EncoderShape
from .mlp import ACTIVATIONS, Mlp, check_activation


@dataclass(frozen=True)
class BertConfig(EncoderShape):
    vocab_size: int = 30522  # bert-base-uncased WordPiece
    max_position: int = 128
    type_vocab_size: int = 2
    hidden_dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 512
    dropout: float = 0.0
    activation: str = "gelu_tanh"  # of the block MLPs: gelu (exact erf) | gelu_tanh | quick_gelu | relu
    head_activation: str = "gelu"  # of the MLM head's transform, same choices
    layer_norm_eps: float = 1e-12
    init_std: float = 0.02  # of the embedding tables
    gradient_checkpointing: bool = False

    def __post_init__(self):
        self.check_encoder_shape(("vocab_size", "max_position", "type_vocab_size"))
        check_activation("model.activation", self.activation)
        check_activation("model.head_activation", self.head_activation)

    Vocab = property(lambda self: Axis("vocab", self.vocab_size))
    Pos = property(lambda self: Axis("position", self.max_position))
    TokenTypes = property(lambda self: Axis("token_type", self.type_vocab_size))

    def build(self, *, key) -> "BertMlm":
        return BertMlm.init(self, key=key)


class BertEmbeddings(eqx.Module):
    word: NamedArray  # [vocab, embed]
    position: NamedArray  # [position, embed]
    token_type: NamedArray  # [token_type, embed]
    ln: hnn.LayerNorm
    dropout: hnn.Dropout

    @staticmethod
    def init(config: BertConfig, *, key) -> "BertEmbeddings":
        kw, kp, kt = jax.random.split(key, 3)
        table = lambda k, axis: hax.random.normal(k, (axis, config.Embed)) * config.init_std  # noqa: E731
        return BertEmbeddings(table(kw, config.Vocab), table(kp, config.Pos), table(kt, config.TokenTypes),
                              hnn.LayerNorm.init(config.Embed, eps=config.layer_norm_eps), hnn.Dropout(config.dropout))

    def __call__(self, input_ids: NamedArray, token_type_ids: NamedArray | None = None, *, key=None) -> NamedArray:
        Pos = input_ids.resolve_axis("position")
        x = self.word.take("vocab", input_ids) + self.position["position", hax.arange(Pos)]
        types = token_type_ids if token_type_ids is not None else hax.zeros_like(input_ids)
        x = x + self.token_type.take("token_type", types)
        return self.dropout(self.ln(x), key=key)


class BertLayer(eqx.Module):
    """Post-LN block: ``ln1(x + attn(x))`` then ``ln2(x + mlp(x))``."""

    attn: Attention
    ln1: hnn.LayerNorm
    mlp: Mlp
    ln2: hnn.LayerNorm
    dropout: hnn.Dropout

    @staticmethod
    def init(config: BertConfig, *, key) -> "BertLayer":
        k_attn, k_mlp = maybe_rng_split(key, 2)
        return BertLayer(
            Attention.init(config.Embed, config.Heads, config.HeadSize, dropout=config.dropout, key=k_attn),
            hnn.LayerNorm.init(config.Embed, eps=config.layer_norm_eps),
            Mlp.init(config.Embed, config.Mlp, activation=config.activation, dropout=config.dropout, key=k_mlp),
            hnn.LayerNorm.init(config.Embed, eps=config.layer_norm_eps),
            hnn.Dropout(config.dropout),
        )

    def __call__(self, x: NamedArray, mask: NamedArray | None = None, *, key=None) -> NamedArray:
        k_attn, k_d1, k_mlp, k_d2 = maybe_rng_split(key, 4)
        x = self.ln1(x + self.dropout(self.attn(x, mask, key=k_attn), key=k_d1))
        return self.ln2(x + self.dropout(self.mlp(x, key=k_mlp), key=k_d2))


class BertMlm(eqx.Module):
    config: BertConfig = eqx.field(static=True)
    embeddings: BertEmbeddings
    layers: Stacked[BertLayer]
    transform: hnn.Linear  # embed -> embed_out (renamed back to embed)
    transform_ln: hnn.LayerNorm
    decoder_bias: NamedArray  # [vocab]; the decoder weight is the word embedding table

    @staticmethod
    def init(config: BertConfig, *, key) -> "BertMlm":
        k_emb, k_layers, k_tr = jax.random.split(key, 3)
        layers = Stacked.init(config.Layers, BertLayer, gradient_checkpointing=config.gradient_checkpointing)(
            config, key=jax.random.split(k_layers, config.num_layers)
        )
        return BertMlm(
            config,
            BertEmbeddings.init(config, key=k_emb),
            layers,
            hnn.Linear.init(In=config.Embed, Out=config.Embed.alias("embed_out"), key=k_tr),
            hnn.LayerNorm.init(config.Embed, eps=config.layer_norm_eps),
            hax.zeros(config.Vocab),
        )

    def attention_mask(self, attention_mask: NamedArray | None) -> NamedArray | None:
        """``[..., position]`` padding mask (1 = real token) -> ``[..., key_position]`` boolean."""
        return None if attention_mask is None else attention_mask.rename({"position": "key_position"}) > 0

    def encode(self, input_ids: NamedArray, attention_mask: NamedArray | None = None,
               token_type_ids: NamedArray | None = None, *, key=None) -> NamedArray:
        """The final hidden states ``[..., position, embed]``."""
        k_emb, k_layers = maybe_rng_split(key, 2)
        x = self.embeddings(input_ids, token_type_ids, key=k_emb)
        keys = maybe_rng_split(k_layers, self.config.num_layers) if k_layers is not None else None
        return self.layers.fold(x, mask=self.attention_mask(attention_mask), key=keys)

    def head(self, hidden: NamedArray) -> NamedArray:
        """MLM logits ``[..., position, vocab]`` of hidden states."""
        h = self.transform(hidden).rename({"embed_out": "embed"})
        h = self.transform_ln(ACTIVATIONS[self.config.head_activation](h))
        return hax.dot(h, self.embeddings.word, axis="embed") + self.decoder_bias

    def __call__(self, input_ids: NamedArray, attention_mask: NamedArray | None = None,
                 token_type_ids: NamedArray | None = None, *, key=None) -> NamedArray:
        return self.head(self.encode(input_ids, attention_mask, token_type_ids, key=key))
