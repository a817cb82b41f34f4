"""Baselines for accuracy prediction from weights: neural (MLP, STATNN) and tree ensembles (XGBoost, LightGBM, RF)."""
