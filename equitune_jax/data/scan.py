"""SCAN (Lake & Baroni 2018), SCAN-II and SCAN-mini, generated exactly from their grammars (data.md, spec §6.2, §9.2).

Grammar (``directions`` = (left, right) for SCAN, (left, right, up, down) for SCAN-II and SCAN-mini)::

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> X opposite D | X around D | U D | turn D | U        (X = U or turn; opposite/around absent in mini)
    U -> walk | look | run | jump

``U D`` -> I_TURN_D U'; ``X opposite D`` -> I_TURN_D I_TURN_D X'; ``X around D`` -> (I_TURN_D X')×4;
``S1 and S2`` -> S1 S2; ``S1 after S2`` -> S2 S1. Counts: SCAN 20,910; SCAN-mini 10,440; SCAN-II 73,920.
Splits match command tokens (not substrings of the whole line).
"""

import itertools
from dataclasses import dataclass

import numpy as np

PRIMITIVES = ("walk", "look", "run", "jump")
ALL_DIRECTIONS = ("left", "right", "up", "down")
IN_VOCAB = ("<pad>", "<eos>", *PRIMITIVES, "turn", *ALL_DIRECTIONS, "opposite", "around", "twice", "thrice", "and",
            "after")
OUT_VOCAB = ("<pad>", "<sos>", "<eos>", "I_WALK", "I_LOOK", "I_RUN", "I_JUMP",
             *(f"I_TURN_{d.upper()}" for d in ALL_DIRECTIONS))
PAD, IN_EOS = 0, 1
OUT_PAD, SOS, OUT_EOS = 0, 1, 2
VARIANTS = {"scan": (("left", "right"), True), "scan2": (ALL_DIRECTIONS, True), "scan_mini": (ALL_DIRECTIONS, False)}
# output word of each input word that a swap group acts on
OUTPUT_WORD = {**{u: f"I_{u.upper()}" for u in PRIMITIVES}, **{d: f"I_TURN_{d.upper()}" for d in ALL_DIRECTIONS}}

Pair = tuple[tuple[str, ...], tuple[str, ...]]


def _verbs(directions, modifiers: bool) -> list[Pair]:
    act = {u: (f"I_{u.upper()}",) for u in PRIMITIVES}
    turn = {d: (f"I_TURN_{d.upper()}",) for d in directions}
    verbs = [((u,), act[u]) for u in PRIMITIVES]
    verbs += [((u, d), turn[d] + act[u]) for u in PRIMITIVES for d in directions]
    verbs += [(("turn", d), turn[d]) for d in directions]
    if modifiers:
        for x, d in itertools.product(("turn", *PRIMITIVES), directions):
            x_act = () if x == "turn" else act[x]
            verbs.append(((x, "opposite", d), turn[d] * 2 + x_act))
            verbs.append(((x, "around", d), (turn[d] + x_act) * 4))
    return verbs


def generate(variant: str = "scan") -> list[Pair]:
    """Every (command tokens, action tokens) pair of the grammar, in a fixed order."""
    if variant not in VARIANTS:
        raise ValueError(f"data.variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    directions, modifiers = VARIANTS[variant]
    clauses = []
    for cmd, out in _verbs(directions, modifiers):
        clauses += [(cmd, out), (cmd + ("twice",), out * 2), (cmd + ("thrice",), out * 3)]
    pairs = list(clauses)
    for (c1, o1), (c2, o2) in itertools.product(clauses, clauses):
        pairs.append((c1 + ("and",) + c2, o1 + o2))
        pairs.append((c1 + ("after",) + c2, o2 + o1))
    return pairs


def _has(cmd: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(cmd[i:i + n] == phrase for i in range(len(cmd) - n + 1))


# The official SCAN split files: held-out rule and the train size after repeating the primitive.
ADDPRIM = {"addprim_jump": (("jump",), 14_670), "addprim_turn_left": (("turn", "left"), 21_890)}
HELD_OUT_PRIMITIVES = (("jump",), ("turn", "up"), ("turn", "left"))


@dataclass(frozen=True)
class ScanSplit:
    train: list[Pair]
    tests: dict[str, list[Pair]]


def split(pairs: list[Pair], name: str, primitive_fraction: float = 0.02, reference: bool = False) -> ScanSplit:
    """An official split: ``length``, ``addprim_jump``, ``addprim_turn_left``, ``template_around_right``, or
    ``turn_up_jump_turn_left`` (SCAN-II/mini; the three primitives each repeated ``primitive_fraction`` ×
    |train without them|; tests ``jump``, ``turn_up``, ``turn_left`` and ``all``).

    ``reference`` (``turn_up_jump_turn_left`` only) reproduces the reference's ``gen_scan_2.py``: its "is not a
    primitive" test is always true, so the bare primitives are test items too; the repeat count is
    ``int(fraction · |train|)`` (floor); and ``all`` is the concatenation of the three test lists, so a command holding
    two of the phrases counts twice. (Its substring test on the whole "IN … OUT …" line equals the token test here: the
    actions are upper-case.) Without it, ``all`` is the union, the primitives are not tested and the count is rounded.
    """
    if reference and name != "turn_up_jump_turn_left":
        raise ValueError("reference_compat.scan_split applies to the turn_up_jump_turn_left split only")
    if name == "length":
        return ScanSplit([p for p in pairs if len(p[1]) < 24], {"length": [p for p in pairs if len(p[1]) >= 24]})
    if name in ADDPRIM:
        phrase, train_size = ADDPRIM[name]
        test = [p for p in pairs if _has(p[0], phrase) and p[0] != phrase]
        rest = [p for p in pairs if not _has(p[0], phrase)]
        bare = [p for p in pairs if p[0] == phrase]
        return ScanSplit(rest + bare * (train_size - len(rest)), {name: test})
    if name == "template_around_right":
        test = [p for p in pairs if any(_has(p[0], (u, "around", "right")) for u in PRIMITIVES)
                and not _has(p[0], ("turn", "around", "right"))]
        train = [p for p in pairs if not _has(p[0], ("around", "right"))]
        return ScanSplit(train, {name: test})
    if name == "turn_up_jump_turn_left":
        held = lambda cmd: [_has(cmd, ph) for ph in HELD_OUT_PRIMITIVES]
        bare = [p for p in pairs if p[0] in HELD_OUT_PRIMITIVES]
        if len(bare) != 3:
            raise ValueError("turn_up_jump_turn_left needs a grammar with the up/down directions (scan2, scan_mini)")
        base = [p for p in pairs if not any(held(p[0]))]
        repeats = int(primitive_fraction * len(base)) if reference else round(primitive_fraction * len(base))
        tested = (lambda p: True) if reference else (lambda p: p[0] not in HELD_OUT_PRIMITIVES)
        tests = {key: [p for p in pairs if held(p[0])[k] and tested(p)]
                 for k, key in enumerate(("jump", "turn_up", "turn_left"))}
        if reference:
            tests["all"] = [p for key in ("turn_up", "jump", "turn_left") for p in tests[key]]
        else:
            tests["all"] = [p for p in pairs if any(held(p[0])) and tested(p)]
        return ScanSplit(base + [p for p in bare for _ in range(repeats)], tests)
    raise ValueError(f"data.split {name!r} is not a SCAN split")


@dataclass(frozen=True)
class EncodedPairs:
    """Padded id arrays: ``source`` [N, S] (command + <eos>), ``prefix`` [N, T] (<sos> + actions, the
    teacher-forcing input) and ``target`` [N, T] (actions + <eos>); padding id 0."""

    source: np.ndarray
    prefix: np.ndarray
    target: np.ndarray


def encode(pairs: list[Pair], max_source: int, max_target: int) -> EncodedPairs:
    in_ids = {w: i for i, w in enumerate(IN_VOCAB)}
    out_ids = {w: i for i, w in enumerate(OUT_VOCAB)}
    n = len(pairs)
    source = np.zeros((n, max_source), np.int32)
    prefix = np.zeros((n, max_target), np.int32)
    target = np.zeros((n, max_target), np.int32)
    for row, (cmd, act) in enumerate(pairs):
        if len(cmd) + 1 > max_source or len(act) + 1 > max_target:
            raise ValueError(f"example {' '.join(cmd)!r} does not fit max_source={max_source}, max_target={max_target}")
        source[row, : len(cmd) + 1] = [in_ids[w] for w in cmd] + [IN_EOS]
        ids = [out_ids[w] for w in act]
        prefix[row, : len(ids) + 1] = [SOS] + ids
        target[row, : len(ids) + 1] = ids + [OUT_EOS]
    return EncodedPairs(source, prefix, target)


def max_lengths(pairs: list[Pair]) -> tuple[int, int]:
    """(longest command + 1, longest action sequence + 1): the padded lengths that fit every pair."""
    return max(len(c) for c, _ in pairs) + 1, max(len(a) for _, a in pairs) + 1


def decode_actions(ids: np.ndarray) -> tuple[str, ...]:
    """Output ids up to the first <eos> as action words."""
    words = []
    for i in np.asarray(ids):
        if int(i) in (OUT_EOS, OUT_PAD):
            break
        words.append(OUT_VOCAB[int(i)])
    return tuple(words)
