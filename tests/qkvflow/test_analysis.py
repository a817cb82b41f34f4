"""Spec §9 tests 11 (Lyapunov on a linear field) and 12 (spectral identity), plus the clustering toy."""

import jax
import jax.numpy as jnp
import numpy as np

from qkvflow_jax.analysis.clustering import preset, simulate
from qkvflow_jax.analysis.lyapunov import kaplan_yorke_dimension, lyapunov_exponents
from qkvflow_jax.analysis.spectra import head_spectra, sorted_eigenvalues, zero_pad


def test_lyapunov_exact_on_linear_field():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n, d, L = 5, 6, 8
        B = jnp.asarray(rng.normal(size=(d, d)))
        x0 = jnp.asarray(rng.normal(size=(n, d)))
        lam = lyapunov_exponents(lambda x, t: x @ B, x0, L)
        assert lam.shape == (L, n, d)
        per_step = np.log(abs(np.linalg.det(np.eye(d) + np.asarray(B) / L)))
        np.testing.assert_allclose(lam[:, -1].sum(axis=-1), per_step, atol=1e-10)
        np.testing.assert_allclose(lam[:, -1].sum(), L * per_step, atol=1e-10)
        np.testing.assert_array_equal(lam[:, :-1], 0.0)  # cross-token exponents
        b = rng.normal(size=d)
        lam_diag = lyapunov_exponents(lambda x, t: x * jnp.asarray(b), x0, L)
        np.testing.assert_allclose(np.sort(lam_diag[:, -1].sum(axis=0)), np.sort(L * np.log(np.abs(1 + b / L))),
                                   atol=1e-10)


def test_kaplan_yorke():
    assert kaplan_yorke_dimension(np.array([1.0, 0.5, 0.2])) == 3.0
    assert abs(kaplan_yorke_dimension(np.array([1.0, -0.5, -1.0])) - (2 + 0.5 / 1.0)) < 1e-12


def test_spectral_identity_f64():
    rng = np.random.default_rng(0)
    D, H, dh = 12, 3, 4
    q, k, v = (rng.normal(size=(D, H, dh)) for _ in range(3))
    o = rng.normal(size=(H, dh, D))
    qk, ov = head_spectra(q, k, v, o)
    assert qk.shape == (H, dh) and np.iscomplexobj(qk)
    for h in range(H):
        full_qk = sorted_eigenvalues(q[:, h] @ k[:, h].T)
        full_ov = sorted_eigenvalues(v[:, h] @ o[h])
        np.testing.assert_allclose(full_qk[:dh], qk[h], atol=1e-10)
        np.testing.assert_allclose(full_ov[:dh], ov[h], atol=1e-10)
        assert np.sum(np.abs(full_qk) < 1e-10) >= D - dh and np.sum(np.abs(full_ov) < 1e-10) >= D - dh
    assert zero_pad(qk, D).shape == (H, D)


def test_clustering_polytope_stays_normalised():
    z0 = np.random.default_rng(0).normal(size=(16, 3))
    A, V, f = preset("polytope")
    traj = simulate(z0, A, V, 50, 0.1)
    assert traj.shape == (51, 16, 3) and np.all(np.isfinite(traj))
    A, V, f = preset("time_dependent")
    assert np.all(np.isfinite(simulate(z0, A, V, 20, 0.05, time_fn=f)))
    assert np.all(np.isfinite(simulate(z0, A, V, 20, 0.05, rescale=True)))
