"""The SCAN generators reproduce the grammar's counts and the official split sizes (data.md, spec §9.2)."""

import numpy as np

from equitune_jax.data import scan as S
from equitune_jax.decoding import exact_match


def test_grammar_sizes_and_interpretation():
    pairs = S.generate("scan")
    assert (len(pairs), len(S.generate("scan_mini")), len(S.generate("scan2"))) == (20_910, 10_440, 73_920)
    table = dict(pairs)
    assert table[("jump", "around", "left", "twice")] == ("I_TURN_LEFT", "I_JUMP") * 8
    assert table[("turn", "opposite", "right")] == ("I_TURN_RIGHT",) * 2
    assert table[("walk", "left", "after", "run", "thrice")] == ("I_RUN",) * 3 + ("I_TURN_LEFT", "I_WALK")
    assert len({c for c, _ in pairs}) == len(pairs)


def test_official_split_sizes():
    pairs = S.generate("scan")
    sizes = {name: (len(s.train), {k: len(v) for k, v in s.tests.items()})
             for name in ("length", "addprim_jump", "addprim_turn_left", "template_around_right")
             for s in [S.split(pairs, name)]}
    assert sizes == {"length": (16_990, {"length": 3_920}), "addprim_jump": (14_670, {"addprim_jump": 7_706}),
                     "addprim_turn_left": (21_890, {"addprim_turn_left": 1_208}),
                     "template_around_right": (15_225, {"template_around_right": 4_476})}
    mini = S.split(S.generate("scan_mini"), "turn_up_jump_turn_left", 0.02)
    assert len(mini.train) == 5_568
    assert {k: len(v) for k, v in mini.tests.items()} == {"jump": 3_884, "turn_up": 848, "turn_left": 848,
                                                          "all": 5_184}
    assert not any("jump" in c for c, _ in mini.train if c != ("jump",))


def test_encoding_and_exact_match():
    pairs = [(("jump", "twice"), ("I_JUMP", "I_JUMP"))]
    enc = S.encode(pairs, 4, 4)
    np.testing.assert_array_equal(enc.prefix[0], [S.SOS, 6, 6, 0])
    np.testing.assert_array_equal(enc.target[0], [6, 6, S.OUT_EOS, 0])
    assert S.decode_actions(enc.target[0]) == ("I_JUMP", "I_JUMP")
    right = np.array([[6, 6, S.OUT_EOS, 5]])  # anything after <eos> is ignored
    wrong = np.array([[6, 6, 6, S.OUT_EOS]])
    assert float(exact_match(right, enc.target)[0]) == 1.0 and float(exact_match(wrong, enc.target)[0]) == 0.0
