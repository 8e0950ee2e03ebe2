"""Where a tree model makes its decisions: the split thresholds of each feature.

The runtime's verification sample (cairn.serving.runtime) puts rows on, beside and between
these thresholds, where a converted model that compares with another precision or another
operator than the original would answer differently. scikit-learn's trees, XGBoost and
LightGBM (through their scikit-learn wrappers) are read; None for any other model.
"""

import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

Thresholds = list[NDArray[np.float64]]  # per feature, sorted and unique


def split_thresholds(estimator: Any, n_features: int) -> Thresholds | None:
    by_feature: list[list[float]] | None = None
    for reader in (_sklearn, _xgboost, _lightgbm):
        found = reader(estimator, n_features)
        if found is not None:
            by_feature = found
            break
    if by_feature is None:
        return None
    return [np.unique(np.asarray(values, dtype=np.float64)) for values in by_feature]


def _sklearn(estimator: Any, n_features: int) -> list[list[float]] | None:
    trees = [
        tree
        for tree in (getattr(estimator, "estimators_", None) or [estimator])
        if hasattr(tree, "tree_")
    ]
    if not trees:
        return None
    by_feature: list[list[float]] = [[] for _ in range(n_features)]
    for tree in trees:
        features, thresholds = tree.tree_.feature, tree.tree_.threshold
        for feature in range(n_features):
            by_feature[feature].extend(thresholds[features == feature].tolist())
    return by_feature


def _xgboost(estimator: Any, n_features: int) -> list[list[float]] | None:
    if not hasattr(estimator, "get_booster") or type(estimator).__module__.split(".")[0] != (
        "xgboost"
    ):
        return None
    model = json.loads(estimator.get_booster().save_raw("json"))
    booster = model["learner"]["gradient_booster"]
    trees = (booster.get("model") or booster["gbtree"]["model"])["trees"]
    by_feature: list[list[float]] = [[] for _ in range(n_features)]
    for tree in trees:
        for left, feature, condition in zip(
            tree["left_children"], tree["split_indices"], tree["split_conditions"], strict=True
        ):
            if left != -1 and 0 <= feature < n_features:  # a split, not a leaf
                # XGBoost keeps (and compares) thresholds in float32.
                by_feature[feature].append(float(np.float32(condition)))
    return by_feature


def _lightgbm(estimator: Any, n_features: int) -> list[list[float]] | None:
    if not hasattr(estimator, "booster_") or type(estimator).__module__.split(".")[0] != (
        "lightgbm"
    ):
        return None
    by_feature: list[list[float]] = [[] for _ in range(n_features)]
    nodes = [tree["tree_structure"] for tree in estimator.booster_.dump_model()["tree_info"]]
    while nodes:
        node = nodes.pop()
        if "split_feature" not in node:
            continue  # a leaf
        threshold, feature = node["threshold"], node["split_feature"]
        # Categorical splits list categories ("1||3"), not a number to sit beside.
        if isinstance(threshold, int | float) and 0 <= feature < n_features:
            by_feature[feature].append(float(threshold))
        nodes.extend((node["left_child"], node["right_child"]))
    return by_feature
