"""Figures of accuracy-prediction experiments."""
