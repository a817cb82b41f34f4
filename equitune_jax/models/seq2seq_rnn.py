"""Recurrent encoder-decoders with attention for SCAN (spec §6.2, §9.2): the reference's ``BasicSeq2Seq`` and a
Luong-style variant, each with GRU, LSTM or Elman (tanh) RNN cells.

``model((source [S], prefix [T]), *, key) -> logits [T, out_vocab]`` (teacher forcing: ``prefix`` is <sos> followed by
the target), causal in the prefix: logits[t] depend only on prefix[:t+1], which joint greedy decoding relies on.
:meth:`RnnSeq2Seq.greedy` decodes free-running (each step reads the model's own previous argmax).

- Encoder (both decoders): embedding(in_vocab, E) → bidirectional cell of hidden H over the command (padding id 0 is
  skipped) → memory [S, 2H]; the decoder state starts as the concatenated final forward and backward states (for an
  LSTM, h and c separately), as the reference's ``_transfer_hidden``.
- ``decoder="reference"`` (the reference's ``AttnDecoderRNN``, hidden 2H): embedding(out_vocab, 2H) → dropout →
  attention weights softmax(h_{t-1} · memory) from the *previous* state → context c_t → the cell reads
  ReLU(Linear(4H → 2H)[embedding; c_t]) → logits Linear(2H → out_vocab)(h_t).
- ``decoder="luong"``: embedding(out_vocab, E) → dropout → cell (hidden 2H) → attention with the *new* state h_t →
  tanh(Linear(4H → 2H)[h_t; c_t]) → Linear(2H → out_vocab).

``dropout`` acts on the decoder's input embedding (the reference's ``drop_rate`` 0.1); there is none in the encoder.
The reference's modules also hold two parameter tensors that its forward pass never reads (the encoder's
``semantic_embedding`` and the decoder's ``attn`` linear); they are left out here.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..data.scan import PAD, SOS

CELLS = ("gru", "lstm", "rnn")
DECODERS = ("reference", "luong")


class ElmanCell(eqx.Module):
    """torch's ``nn.RNN`` cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""

    input_to_hidden: eqx.nn.Linear
    hidden_to_hidden: eqx.nn.Linear

    def __init__(self, input_size: int, hidden_size: int, *, key):
        k1, k2 = jax.random.split(key)
        self.input_to_hidden = eqx.nn.Linear(input_size, hidden_size, key=k1)
        self.hidden_to_hidden = eqx.nn.Linear(hidden_size, hidden_size, key=k2)

    def __call__(self, x, h):
        return jnp.tanh(self.input_to_hidden(x) + self.hidden_to_hidden(h))


def make_cell(kind: str, input_size: int, hidden_size: int, *, key):
    if kind == "gru":
        return eqx.nn.GRUCell(input_size, hidden_size, key=key)
    if kind == "lstm":
        return eqx.nn.LSTMCell(input_size, hidden_size, key=key)
    if kind == "rnn":
        return ElmanCell(input_size, hidden_size, key=key)
    raise ValueError(f"model.cell must be one of {CELLS}, got {kind!r}")


def zero_state(kind: str, size: int, dtype=jnp.float32):
    """The initial state: h, or (h, c) for an LSTM."""
    h = jnp.zeros((size,), dtype)
    return (h, h) if kind == "lstm" else h


def hidden_of(state):
    """h of a state (the LSTM's (h, c) or a plain h)."""
    return state[0] if isinstance(state, tuple) else state


class RnnEncoder(eqx.Module):
    embed: eqx.nn.Embedding
    forward_cell: eqx.Module
    backward_cell: eqx.Module
    cell: str = eqx.field(static=True)

    def __init__(self, cell: str, in_vocab: int, embed_dim: int, hidden: int, *, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.embed = eqx.nn.Embedding(in_vocab, embed_dim, key=k1)
        self.forward_cell = make_cell(cell, embed_dim, hidden, key=k2)
        self.backward_cell = make_cell(cell, embed_dim, hidden, key=k3)
        self.cell = cell

    def __call__(self, source):
        """(memory [S, 2H], padding mask [S], decoder initial state of size 2H)."""
        mask = source != PAD
        emb = jax.vmap(self.embed)(source)

        def run(cell, inputs, keep):
            def step(state, xm):
                x, m = xm
                new = cell(x, state)
                state = jax.tree.map(lambda a, b: jnp.where(m, a, b), new, state)
                return state, hidden_of(state)

            h0 = zero_state(self.cell, _hidden_size(cell), emb.dtype)
            return jax.lax.scan(step, h0, (inputs, keep))

        final_fwd, states_fwd = run(self.forward_cell, emb, mask)
        final_bwd, states_bwd = run(self.backward_cell, emb[::-1], mask[::-1])
        memory = jnp.concatenate([states_fwd, states_bwd[::-1]], axis=-1)
        init = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), final_fwd, final_bwd)
        return memory, mask, init


def _hidden_size(cell) -> int:
    if isinstance(cell, ElmanCell):
        return cell.hidden_to_hidden.out_features
    return cell.hidden_size


def _attend(h, memory, mask):
    scores = jnp.where(mask, memory @ h, -jnp.inf)
    return jax.nn.softmax(scores) @ memory


class ReferenceDecoder(eqx.Module):
    embed: eqx.nn.Embedding
    combine: eqx.nn.Linear
    cell: eqx.Module
    out: eqx.nn.Linear
    dropout: eqx.nn.Dropout

    def __init__(self, cell: str, out_vocab: int, size: int, dropout: float, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.embed = eqx.nn.Embedding(out_vocab, size, key=k1)
        self.combine = eqx.nn.Linear(2 * size, size, key=k2)
        self.cell = make_cell(cell, size, size, key=k3)
        self.out = eqx.nn.Linear(size, out_vocab, key=k4)
        self.dropout = eqx.nn.Dropout(dropout)

    def step(self, memory, mask, state, token, key):
        emb = self.dropout(self.embed(token), key=key, inference=key is None)
        context = _attend(hidden_of(state), memory, mask)
        state = self.cell(jax.nn.relu(self.combine(jnp.concatenate([emb, context]))), state)
        return state, self.out(hidden_of(state))


class LuongDecoder(eqx.Module):
    embed: eqx.nn.Embedding
    cell: eqx.Module
    combine: eqx.nn.Linear
    project: eqx.nn.Linear
    dropout: eqx.nn.Dropout

    def __init__(self, cell: str, out_vocab: int, embed_dim: int, size: int, dropout: float, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.embed = eqx.nn.Embedding(out_vocab, embed_dim, key=k1)
        self.cell = make_cell(cell, embed_dim, size, key=k2)
        self.combine = eqx.nn.Linear(2 * size, size, key=k3)
        self.project = eqx.nn.Linear(size, out_vocab, key=k4)
        self.dropout = eqx.nn.Dropout(dropout)

    def step(self, memory, mask, state, token, key):
        emb = self.dropout(self.embed(token), key=key, inference=key is None)
        state = self.cell(emb, state)
        h = hidden_of(state)
        return state, self.project(jnp.tanh(self.combine(jnp.concatenate([h, _attend(h, memory, mask)]))))


class RnnSeq2Seq(eqx.Module):
    """``encoder`` and ``decoder`` (the reference clips the gradients of the two separately, see
    ``equitune_jax.optim``)."""

    encoder: RnnEncoder
    decoder: ReferenceDecoder | LuongDecoder

    def __init__(self, in_vocab: int, out_vocab: int, embed_dim: int, hidden: int, dropout: float = 0.0, *,
                 cell: str = "gru", decoder: str = "luong", key):
        if cell not in CELLS:
            raise ValueError(f"model.cell must be one of {CELLS}, got {cell!r}")
        if decoder not in DECODERS:
            raise ValueError(f"model.decoder must be one of {DECODERS}, got {decoder!r}")
        k1, k2 = jax.random.split(key)
        self.encoder = RnnEncoder(cell, in_vocab, embed_dim, hidden, key=k1)
        if decoder == "reference":
            self.decoder = ReferenceDecoder(cell, out_vocab, 2 * hidden, dropout, key=k2)
        else:
            self.decoder = LuongDecoder(cell, out_vocab, embed_dim, 2 * hidden, dropout, key=k2)

    def _step_keys(self, key, length):
        return None if key is None else jax.random.split(key, length)

    def __call__(self, x, *, key=None):
        source, prefix = x
        memory, mask, state = self.encoder(source)
        keys = self._step_keys(key, prefix.shape[0])

        def step(state, inputs):
            token, k = inputs if keys is not None else (inputs, None)
            return self.decoder.step(memory, mask, state, token, k)

        _, logits = jax.lax.scan(step, state, (prefix, keys) if keys is not None else prefix)
        return logits

    def greedy(self, source, length: int, *, key=None):
        """[length, out_vocab] logits of free-running decoding from <sos>: step t reads the argmax of step t−1 (no
        gradient through the choice, as the reference's ``topi.detach()``). With the same ``key`` the dropout masks
        equal those of the teacher-forced call at every position."""
        memory, mask, state = self.encoder(source)
        keys = self._step_keys(key, length)

        def step(carry, k):
            state, token = carry
            state, logits = self.decoder.step(memory, mask, state, token, k)
            return (state, jax.lax.stop_gradient(jnp.argmax(logits)).astype(jnp.int32)), logits

        start = (state, jnp.asarray(SOS, jnp.int32))
        _, logits = jax.lax.scan(step, start, keys if keys is not None else None, length=length)
        return logits
