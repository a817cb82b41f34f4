"""Kendall τ-b equals scipy's (variant b) on data with ties (nfn.md §11, test 9)."""

import numpy as np
import scipy.stats

from nfn_jax.metrics import kendall_tau_b, regression_metrics


def test_kendall_tau_b_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = np.round(rng.random(200), 1)  # many ties
        y = np.where(rng.random(200) < 0.3, 0.1, x + 0.3 * rng.random(200))
        assert abs(kendall_tau_b(x, y) - scipy.stats.kendalltau(x, y, variant="b").statistic) < 1e-12
    assert kendall_tau_b(np.arange(5), np.arange(5)) == 1.0
    metrics = regression_metrics(np.full(4, 0.5), np.asarray([0.1, 0.2, 0.3, 0.4]))
    assert abs(metrics["l1"] - 0.25) < 1e-12
