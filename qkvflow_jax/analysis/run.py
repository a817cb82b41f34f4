"""All analyses of one trained DiffEqFormer (spec §4): spectra on a dense t grid, token Lyapunov exponents of a
prompt, the clustering toy; writes analysis.json, analysis.npz and PNGs to a folder."""

import json
from pathlib import Path

import haliax as hax
import numpy as np

from .clustering import preset, simulate
from .lyapunov import kaplan_yorke_dimension, lyapunov_exponents
from .plots import plot_clustering, plot_lyapunov, plot_spectra
from .spectra import spectra_over_time, zero_pad


def _complex_list(a: np.ndarray) -> list:
    return [[float(z.real), float(z.imag)] for z in np.ravel(a)]


def run_analyses(model, prompt_ids: list[int], prompt_tokens: list[str], out: Path, num_times: int = 64,
                 analysis_grid: str = "forward") -> dict:
    """Run every analysis on ``model`` and return the headline numbers (figure paths relative to ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    config = model.config
    times = np.linspace(0.0, 1.0, num_times)
    spectra = spectra_over_time(model, times)
    D = config.hidden_dim

    ids = hax.named(np.asarray(prompt_ids, np.int32), "position")
    x0 = model.embeddings(ids)
    axes = x0.axes

    def field(x, t):
        return model.vector_field(hax.named(x, axes), t).array

    exponents = lyapunov_exponents(field, x0.array, config.num_layers, analysis_grid)
    spectrum_last = exponents.sum(axis=0)[-1]

    rng = np.random.default_rng(0)
    z0 = rng.normal(size=(24, 3))
    trajectories = {}
    for name in ("polytope", "hyperplanes", "time_dependent"):
        A, V, f = preset(name, seed=0)
        trajectories[name] = simulate(z0, A, V, 200, 0.05, time_fn=f)

    np.savez(out / "analysis.npz", t=times, qk=zero_pad(spectra["qk"], D), ov=zero_pad(spectra["ov"], D),
             ff=spectra["ff"], lyapunov=exponents, **{f"clustering_{k}": v for k, v in trajectories.items()})
    figures = [plot_spectra(spectra, out / "spectra.png"),
               plot_lyapunov(exponents, prompt_tokens, out / "lyapunov.png"),
               plot_clustering(trajectories, out / "clustering.png")]
    qk_top = np.abs(spectra["qk"][:, :, 0])
    summary = {
        "qk_max_abs_eig_t0": float(qk_top[0].max()), "qk_max_abs_eig_t1": float(qk_top[-1].max()),
        "ov_fraction_positive_real_t1": float((spectra["ov"][-1].real > 0).mean()),
        "lyapunov_max_per_token": [float(v) for v in exponents.sum(axis=0).max(axis=-1)],
        "lyapunov_kaplan_yorke_last_token": kaplan_yorke_dimension(spectrum_last),
        "figures": [p.name for p in figures],
    }
    full = {**summary, "t": times.tolist(), "qk_eigenvalues_re_im": _complex_list(spectra["qk"]),
            "ov_eigenvalues_re_im": _complex_list(spectra["ov"]), "qk_shape": list(spectra["qk"].shape)}
    (out / "analysis.json").write_text(json.dumps(full))
    return summary


def prompt_from_text(text: str, tokenizer, length: int) -> tuple[list[int], list[str]]:
    """The first ``length`` token ids of ``text`` and their strings."""
    ids = tokenizer.encode(text)[:length]
    return ids, [tokenizer.decode([i]) for i in ids]


__all__ = ["run_analyses", "prompt_from_text"]
