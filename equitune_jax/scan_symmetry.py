"""The SCAN symmetry groups and design-2 invariant maps (spec §3 "SCAN factors", §2.2 "OrbitCollapse").

Each factor is one transposition on input words and on output actions: ``verb`` jump↔run / I_JUMP↔I_RUN,
``rl`` left↔right / I_TURN_LEFT↔I_TURN_RIGHT, ``ud`` up↔down / I_TURN_UP↔I_TURN_DOWN. Representatives are
config: the reference collapses onto jump, right, up (the held-out words); seen words (run, right, down)
keep 2 of 3 branches in distribution (spec §9.2).
"""

from collections.abc import Mapping, Sequence

from .data.scan import IN_VOCAB, OUT_VOCAB, OUTPUT_WORD
from .groups import PermutationGroup, product, vocab_swaps
from .invariant_maps import OrbitCollapse

SCAN_FACTORS = {"verb": ("jump", "run"), "rl": ("left", "right"), "ud": ("up", "down")}
REFERENCE_REPRESENTATIVES = {"verb": "jump", "rl": "right", "ud": "up"}


def scan_factor(name: str) -> PermutationGroup:
    if name not in SCAN_FACTORS:
        raise ValueError(f"groups.factors: unknown SCAN factor {name!r}; choose from {tuple(SCAN_FACTORS)}")
    a, b = SCAN_FACTORS[name]
    return vocab_swaps(IN_VOCAB, [(a, b)], OUT_VOCAB, [(OUTPUT_WORD[a], OUTPUT_WORD[b])], name=name)


def scan_product(names: Sequence[str]):
    return product(*(scan_factor(n) for n in names))


def scan_invariant_maps(names: Sequence[str], representatives: Mapping[str, str]) -> tuple[OrbitCollapse, ...]:
    """I_{G_{-i}} for each factor i: collapse every OTHER factor's orbit onto its representative."""
    for name in names:
        rep = representatives.get(name)
        if rep not in SCAN_FACTORS.get(name, ()):
            raise ValueError(f"groups.representatives.{name} must be one of {SCAN_FACTORS.get(name)}, got {rep!r}")
    maps = []
    for i in range(len(names)):
        others = [n for j, n in enumerate(names) if j != i]
        maps.append(OrbitCollapse.of([scan_factor(n) for n in others],
                                     [IN_VOCAB.index(representatives[n]) for n in others],
                                     [OUT_VOCAB.index(OUTPUT_WORD[representatives[n]]) for n in others]))
    return tuple(maps)
