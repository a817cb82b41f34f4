"""Regenerate ``data/pot_sinkhorn_reference.json``: POT's ``ot.sinkhorn`` and ``ot.emd`` plans on small fixed
cost matrices, stored so that ``test_transport`` notices when the solvers' numbers move (a POT upgrade, a changed
call). The stored file was made with POT 0.9.5; the project pins a later POT, which must give the same plans.

    python tests/fusion/make_pot_reference.py
"""

import json
from pathlib import Path

import numpy as np
import ot

OUT = Path(__file__).parent / "data" / "pot_sinkhorn_reference.json"


def main():
    rng = np.random.default_rng(2024)
    cases = []
    for n_a, n_b in ((4, 4), (5, 3), (6, 8)):
        cost = rng.random((n_a, n_b))
        cost /= cost.max()
        a, b = np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b)
        case = {"cost": cost.tolist(), "emd": ot.emd(a, b, cost).tolist(), "sinkhorn": {}}
        for reg in (0.02, 0.08, 0.3):
            case["sinkhorn"][str(reg)] = ot.sinkhorn(a, b, cost, reg).tolist()
        cases.append(case)
    OUT.write_text(json.dumps({"pot_version": ot.__version__, "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
