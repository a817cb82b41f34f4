"""The reference SCAN protocol's pieces: the BasicSeq2Seq against a torch forward written from the reference's modules,
free-running decoding and the teacher-forcing / EOS-cut / summed losses, independent (reference) decoding is
equivariant, the reference split, torch-Adam clipping per module, best-on-validation selection."""

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np
import optax
import pytest
from levanter.tracker import NoopTracker

from equitune_jax.config import ScanStageConfig
from equitune_jax.data import scan as S
from equitune_jax.decoding import FreeRunning, predict
from equitune_jax.main.scan import build_wrapper, make_sequence_nll
from equitune_jax.models.seq2seq_rnn import RnnSeq2Seq
from equitune_jax.optim import TorchAdamConfig, group_labels
from equitune_jax.scan_symmetry import scan_product
from equitune_jax.training import KeepBest

VIN, VOUT = len(S.IN_VOCAB), len(S.OUT_VOCAB)


def _pairs(n=4):
    pairs = S.generate("scan_mini")
    return S.encode([pairs[i] for i in (5, 400, 2000, 7000)][:n], 8, 13)


def _torch_reference(model: RnnSeq2Seq, cell: str, source, prefix):
    """The reference's EncoderRNN + AttnDecoderRNN forward with teacher forcing, in torch, with ``model``'s weights."""
    import torch

    rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[cell]
    t = lambda a: torch.tensor(np.asarray(a))
    enc, dec = model.encoder, model.decoder
    hidden = enc.embed.weight.shape[1]

    def load(module, cells):
        for suffix, c in zip(("", "_reverse"), cells):
            if cell == "rnn":
                w_ih, b_ih = c.input_to_hidden.weight, c.input_to_hidden.bias
                w_hh, b_hh = c.hidden_to_hidden.weight, c.hidden_to_hidden.bias
            elif cell == "gru":  # equinox folds b_hh's r/z parts into one bias and keeps b_hn apart
                w_ih, w_hh, b_ih = c.weight_ih, c.weight_hh, c.bias
                b_hh = jnp.concatenate([jnp.zeros(2 * c.hidden_size), c.bias_n])
            else:
                w_ih, w_hh, b_ih, b_hh = c.weight_ih, c.weight_hh, c.bias, jnp.zeros_like(c.bias)
            for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
                getattr(module, f"{name}_l0{suffix}").data = t(value)

    encoder_rnn = rnn(hidden, hidden, bidirectional=True)
    load(encoder_rnn, (enc.forward_cell, enc.backward_cell))
    decoder_rnn = rnn(2 * hidden, 2 * hidden)
    load(decoder_rnn, (dec.cell,))
    with torch.no_grad():
        length = int((np.asarray(source) != S.PAD).sum())
        embedded = t(enc.embed.weight)[t(source[:length])][:, None, :]
        out, state = encoder_rnn(embedded)
        arrange = lambda h: h.view(1, 2, 1, -1)[-1].view(1, 1, -1)
        state = tuple(arrange(h) for h in state) if cell == "lstm" else arrange(state)
        rows = []
        for token in prefix:
            emb = t(dec.embed.weight)[int(token)].view(1, 1, -1)
            attn_state = state[0] if isinstance(state, tuple) else state
            weights = torch.softmax(attn_state[0] @ out.squeeze(1).t(), dim=1)
            applied = torch.bmm(weights.unsqueeze(0), out.permute(1, 0, 2))
            x = torch.cat((emb[0], applied[0]), 1) @ t(dec.combine.weight).t() + t(dec.combine.bias)
            output, state = decoder_rnn(torch.relu(x).unsqueeze(0), state)
            rows.append((output[0] @ t(dec.out.weight).t() + t(dec.out.bias))[0])
        return torch.stack(rows).numpy()


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_reference_decoder_matches_the_reference_forward_in_torch(cell):
    model = RnnSeq2Seq(VIN, VOUT, 6, 6, 0.1, cell=cell, decoder="reference", key=jax.random.PRNGKey(1))
    e = _pairs(1)
    ours = model((jnp.asarray(e.source[0]), jnp.asarray(e.prefix[0])))
    np.testing.assert_allclose(ours, _torch_reference(model, cell, e.source[0], e.prefix[0]), atol=2e-5)


def test_free_running_rows_and_teacher_forcing_choices():
    model = RnnSeq2Seq(VIN, VOUT, 6, 6, key=jax.random.PRNGKey(2), decoder="reference")
    e = _pairs()
    source, prefix, target = (jnp.asarray(a) for a in (e.source, e.prefix, e.target))
    free = jax.vmap(FreeRunning(model, 13))(source)
    for row, src in zip(free, source):  # zeros after the model's own first <eos>, log-probs before it
        greedy = jax.nn.log_softmax(model.greedy(src, 13))
        eos = np.flatnonzero(np.argmax(greedy, -1) == S.OUT_EOS)
        stop = eos[0] if len(eos) else 13
        np.testing.assert_allclose(row[: stop + 1], greedy[: stop + 1], atol=1e-6)
        assert not np.any(np.asarray(row[stop + 1:]))
    batch = _batch(e)
    loss = eqx.filter_jit(lambda fn, m, b, k: fn(m, b, key=k)[0])  # one compile per loss function
    mask = np.asarray(target != S.OUT_PAD, np.float32)
    tf = jax.nn.log_softmax(jax.vmap(lambda s, p: model((s, p)))(source, prefix))
    picked = lambda logp: np.take_along_axis(np.asarray(logp), np.asarray(target)[..., None], -1)[..., 0]
    key = jax.random.PRNGKey(0)
    summed = make_sequence_nll(True, ScanStageConfig(teacher_forcing_ratio=1.0, token_loss="sum"))
    np.testing.assert_allclose(loss(summed, model, batch, None), np.mean(-(picked(tf) * mask).sum(-1)), rtol=1e-5)
    meaned = make_sequence_nll(True, ScanStageConfig())
    np.testing.assert_allclose(loss(meaned, model, batch, None), np.mean(-(picked(tf) * mask).sum(-1) / mask.sum(-1)),
                               rtol=1e-5)
    own = make_sequence_nll(True, ScanStageConfig(teacher_forcing_ratio=0.0, token_loss="sum"))
    np.testing.assert_allclose(loss(own, model, batch, key), np.mean(-(picked(free) * mask).sum(-1)), rtol=1e-5)
    cut = make_sequence_nll(True, ScanStageConfig(token_loss="sum"), eos_loss_cut=True)
    eos = np.argmax(tf, -1) == S.OUT_EOS
    first = np.where(eos.any(-1), eos.argmax(-1), 13)
    keep = mask * (np.arange(13) <= first[:, None])
    np.testing.assert_allclose(loss(cut, model, batch, key), np.mean(-(picked(tf) * keep).sum(-1)), rtol=1e-5)
    half = make_sequence_nll(True, ScanStageConfig(teacher_forcing_ratio=0.5, token_loss="sum"))
    values = {round(float(loss(half, model, batch, jax.random.PRNGKey(k))), 4) for k in range(10)}
    assert values == {round(float(loss(summed, model, batch, None)), 4), round(float(loss(own, model, batch, key)), 4)}


def _batch(e):
    import haliax as hax

    from equitune_jax.data.scan_dataset import Seq2SeqExample

    named = lambda a, axes: hax.named(jnp.asarray(a), axes)
    return Seq2SeqExample(named(e.source, ("batch", "source_pos")), named(e.prefix, ("batch", "target_pos")),
                          named(e.target, ("batch", "target_pos")), named(np.ones(len(e.source)), ("batch",)))


def test_independent_decoding_is_equivariant():
    from equitune_jax.config import ScanConfig

    base = RnnSeq2Seq(VIN, VOUT, 8, 8, key=jax.random.PRNGKey(3), decoder="reference", cell="lstm")
    product = scan_product(("verb", "rl", "ud"))
    source = jnp.asarray(_pairs().source[1])
    decode = jax.jit(lambda m, s: predict(m, s, 13, "independent"))
    for method in ("equitune", "multi_equitune"):
        model = build_wrapper(method, base, ScanConfig())
        out = decode(model, source)
        for g in product.elements:
            expected = out
            for factor, gi in reversed(list(zip(product.factors, g))):
                expected = factor.act_output_ids(gi, expected)
            np.testing.assert_array_equal(decode(model, product.act_input(g, source)), expected)


def test_reference_split():
    pairs = S.generate("scan_mini")
    ours, ref = S.split(pairs, "turn_up_jump_turn_left", 0.02), S.split(pairs, "turn_up_jump_turn_left", 0.02, True)
    assert {k: len(v) for k, v in ref.tests.items()} == {"jump": 3885, "turn_up": 849, "turn_left": 849, "all": 5583}
    assert len(ref.tests["all"]) == sum(len(ref.tests[k]) for k in ("jump", "turn_up", "turn_left"))
    assert len(ours.tests["all"]) == 5184 and len(set(ref.tests["all"])) == 5184 + 3
    base = len([p for p in ours.train if p[0] not in S.HELD_OUT_PRIMITIVES])
    assert (base, len(ours.train), len(ref.train)) == (5253, 5253 + 3 * 105, 5253 + 3 * 105)  # round = floor here
    assert len(S.split(pairs, "turn_up_jump_turn_left", 0.0215, True).train) == base + 3 * int(0.0215 * base)


def test_torch_adam_clips_each_module_and_adds_coupled_l2():
    class Part(eqx.Module):
        w: jax.Array

    class Model(eqx.Module):
        encoder: Part
        decoder: Part

    model = Model(Part(jnp.asarray([3.0, 4.0])), Part(jnp.asarray([0.3, 0.4])))
    grads = Model(Part(jnp.asarray([30.0, 40.0])), Part(jnp.asarray([0.6, 0.8])))
    assert jax.tree.leaves(group_labels(model, ("encoder", "decoder"))) == ["encoder", "decoder"]
    config = TorchAdamConfig(learning_rate=0.1, weight_decay=0.01, clip_norm=5.0, clip_groups=("encoder", "decoder"),
                             warmup=0.0, lr_schedule="constant")
    opt = config.build(10)
    updates, _ = opt.update(grads, opt.init(model), model)
    # encoder: |g| = 50 -> clipped to 5; decoder: |g| = 1 (not clipped); then g += 0.01 θ; Adam's first step is
    # -lr · sign-like g / (|g| + eps)
    for part, g in (("encoder", np.array([3.0, 4.0]) + 0.01 * np.array([3.0, 4.0])),
                    ("decoder", np.array([0.6, 0.8]) + 0.01 * np.array([0.3, 0.4]))):
        expected = -0.1 * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(getattr(updates, part).w, expected, rtol=1e-5)
    reference = optax.chain(optax.clip_by_global_norm(5.0))  # one global clip would scale the decoder too
    clipped, _ = reference.update(grads, reference.init(model))
    assert float(clipped.decoder.w[0]) < 0.6
    with pytest.raises(ValueError, match="clip_groups needs"):
        TorchAdamConfig(clip_groups=("encoder",))


def test_keep_best_keeps_the_first_strictly_better_model():
    scores = iter([0.0, 0.5, 0.5, 0.7, 0.6])
    keep = KeepBest(lambda m: next(scores), first_step=1, every=2)

    class Info:
        def __init__(self, step, model):
            self.step, self.eval_model = step, model

    with levanter.tracker.current_tracker(NoopTracker()):
        keep.before({"w": jnp.asarray(0.0)})  # update 0 stands for the check after the first update
        for updates in range(2, 10):
            keep(Info(updates - 1, {"w": jnp.asarray(float(updates))}))
    assert [u for u, _ in keep.history] == [0, 3, 5, 7, 9]
    assert keep.best_score == 0.7 and keep.best_step == 7 and float(keep.best_model["w"]) == 7.0
