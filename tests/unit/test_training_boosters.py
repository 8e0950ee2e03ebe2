"""save_model with XGBoost and LightGBM: their scikit-learn wrappers (alone or in a Pipeline) are
saved with their library's version in the metadata; their native boosters are refused."""

import importlib.metadata
from pathlib import Path

import pytest
import xgboost
from lightgbm import LGBMClassifier
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from cairn import training

X, Y = load_iris(return_X_y=True)


def test_a_pipeline_with_a_booster_records_the_boosters_version(tmp_path: Path) -> None:
    model = make_pipeline(StandardScaler(), LGBMClassifier(n_estimators=3, verbose=-1)).fit(X, Y)
    saved = training.save_model(model, path=tmp_path / "m", sample_input=X[:1])
    assert saved.metadata.frameworks["lightgbm"] == importlib.metadata.version("lightgbm")
    assert "xgboost" not in saved.metadata.frameworks
    loaded = training.load_model(tmp_path / "m").estimator
    assert loaded.predict(X).tolist() == model.predict(X).tolist()


def test_a_native_booster_is_refused_with_the_wrapper_to_use(tmp_path: Path) -> None:
    booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=Y), num_boost_round=2)
    with pytest.raises(TypeError, match="XGBClassifier"):
        training.save_model(booster, path=tmp_path / "m", sample_input=X[:1])
