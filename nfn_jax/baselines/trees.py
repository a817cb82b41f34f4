"""Tree-ensemble baselines on all flattened weights (nfn.md §6): XGBoost, LightGBM (gbdt) and Random Forest (LightGBM rf).

Features: every block slot, the classifier and (when present) the embedding, flattened (MNIST zoo: 18,506).
The libraries are the optional extra ``nfn-trees`` (xgboost, lightgbm); :func:`available` says whether they import.
"""

import numpy as np

from ..data import PredictorSplit
from ..features import flat_encoder

XGBOOST_PARAMS = {"objective": "reg:squarederror", "learning_rate": 0.1, "max_depth": 10, "min_child_weight": 50,
                  "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 0.01, "reg_alpha": 0.02, "tree_method": "hist"}
XGBOOST_MAX_ROUNDS = 50
LIGHTGBM_PARAMS = {"objective": "regression", "boosting": "gbdt", "learning_rate": 0.1, "num_leaves": 256, "max_depth": 10,
                   "min_data_in_leaf": 50, "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
                   "lambda_l1": 0.1, "lambda_l2": 0.2, "min_gain_to_split": 0.01, "max_bin": 255, "verbosity": -1}
LIGHTGBM_MAX_ROUNDS, LIGHTGBM_EARLY_STOP = 1000, 50
RANDOM_FOREST_PARAMS = {**LIGHTGBM_PARAMS, "boosting": "rf", "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8}
TREE_METHODS = ("xgboost", "lightgbm", "random_forest")


def available() -> tuple[bool, str]:
    """``(True, "")`` if xgboost and lightgbm import, else ``(False, reason)``."""
    try:
        import lightgbm  # noqa: F401
        import xgboost  # noqa: F401
    except ImportError as err:
        return False, f"tree baselines skipped: {err} (install the optional extra nfn-trees: xgboost, lightgbm)"
    return True, ""


def flat_features(split: PredictorSplit) -> np.ndarray:
    """``[N, F]`` float32: all block slots, classifier and embedding weights, flattened."""
    w = split.weights
    parts = [np.asarray(flat_encoder(w)), np.asarray(w.classifier_features())]
    emb = w.embedding_features()
    if emb is not None:
        parts.append(np.asarray(emb))
    return np.concatenate(parts, axis=1).astype(np.float32)


def fit_predict(method: str, splits: dict[str, PredictorSplit], seed: int = 0) -> dict[str, np.ndarray]:
    """Train ``method`` on train (model selection on val) and return predictions ``{"val", "test"}``."""
    x = {name: flat_features(s) for name, s in splits.items()}
    y = {name: s.accuracy for name, s in splits.items()}
    if method == "xgboost":
        import xgboost as xgb

        data = {n: xgb.DMatrix(x[n], label=y[n]) for n in x}
        # trained once; the number of rounds is the best val-RMSE iteration (the reference retrains per round count)
        booster = xgb.train({**XGBOOST_PARAMS, "seed": seed, "eval_metric": "rmse"}, data["train"], XGBOOST_MAX_ROUNDS,
                            evals=[(data["val"], "val")], early_stopping_rounds=XGBOOST_MAX_ROUNDS, verbose_eval=False)
        rounds = (0, booster.best_iteration + 1)
        return {n: booster.predict(data[n], iteration_range=rounds) for n in ("val", "test")}
    if method in ("lightgbm", "random_forest"):
        import lightgbm as lgb

        params = {**(LIGHTGBM_PARAMS if method == "lightgbm" else RANDOM_FOREST_PARAMS), "seed": seed}
        train = lgb.Dataset(x["train"], y["train"])
        val = lgb.Dataset(x["val"], y["val"], reference=train)
        booster = lgb.train(params, train, LIGHTGBM_MAX_ROUNDS, valid_sets=[val],
                            callbacks=[lgb.early_stopping(LIGHTGBM_EARLY_STOP, verbose=False)])
        return {n: booster.predict(x[n], num_iteration=booster.best_iteration) for n in ("val", "test")}
    raise ValueError(f"unknown tree method {method!r}; expected one of {TREE_METHODS}")
