"""Static input/output pieces of the GPT-variant models (spec §1.1, §1.5): E_tok, E_pos and LN_f.

E_tok ~ N(0, token_init_std^2) (0.02), E_pos ~ N(0, position_init_std^2) (0.01), LN_f gamma = 1, beta = 0:
set explicitly here, not inherited from haliax's defaults (truncated normal / sqrt(fan_in)).
"""

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax
from haliax import Axis, NamedArray


class TokenAndPositionEmbeddings(eqx.Module):
    """X(0) = Dropout_embed(E_tok[ids] + E_pos[pos]); E_tok (Vocab, Embed) is also the tied unembedding."""

    token_embeddings: hnn.Embedding
    position_embeddings: hnn.Embedding
    dropout: hnn.Dropout

    @staticmethod
    def init(Vocab: Axis, config, *, key) -> "TokenAndPositionEmbeddings":
        k_tok, k_pos = jax.random.split(key)
        tok = hax.random.normal(k_tok, (Vocab, config.Embed)) * config.token_init_std
        pos = hax.random.normal(k_pos, (config.max_Pos, config.Embed)) * config.position_init_std
        return TokenAndPositionEmbeddings(hnn.Embedding(weight=tok, Vocab=Vocab, Embed=config.Embed),
                                          hnn.Embedding(weight=pos, Vocab=config.max_Pos, Embed=config.Embed),
                                          hnn.Dropout(config.embed_pdrop))

    @property
    def Vocab(self) -> Axis:
        return self.token_embeddings.Vocab

    def __call__(self, input_ids: NamedArray, *, key=None) -> NamedArray:
        """(..., position) ids -> (..., position, embed); dropout only when a key is given."""
        Pos = input_ids.resolve_axis("position")
        x = self.token_embeddings.embed(input_ids) + self.position_embeddings.embed(hax.arange(Pos))
        return self.dropout(x, inference=True if key is None else None, key=key)

    def resize_vocab(self, new_size: int, key=None) -> "TokenAndPositionEmbeddings":
        return eqx.tree_at(lambda e: e.token_embeddings, self, self.token_embeddings.resize_embeddings(new_size, key))


def final_layer_norm(config) -> hnn.LayerNorm:
    """Static LN_f with gamma = 1, beta = 0."""
    return hnn.LayerNorm(config.Embed, hax.ones(config.Embed), hax.zeros(config.Embed), eps=config.layer_norm_epsilon)
