"""Analyses of trained DiffEqFormers: QK/OV/FF spectra over depth, token Lyapunov exponents, clustering toy."""
