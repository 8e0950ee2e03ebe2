"""XGBoost and LightGBM models, saved by save_model through their scikit-learn wrappers and served:
on ONNX Runtime where the converted model verifies against the original, natively otherwise;
either way the server answers what the model itself predicts."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from numpy.typing import NDArray
from sklearn.datasets import (  # type: ignore[import-untyped]
    load_breast_cancer,
    load_diabetes,
    load_iris,
    load_wine,
)
from xgboost import XGBClassifier, XGBRegressor

from cairn import training
from cairn.serving import build_app
from cairn.serving.config import ServeConfig
from cairn.serving.runtime import PROBA_ATOL, SklearnRuntime, choose_runtime, verification_sample

Data = tuple[NDArray[Any], NDArray[Any]]
DATASETS: dict[str, Callable[[], Data]] = {
    "iris": lambda: load_iris(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "diabetes": lambda: load_diabetes(return_X_y=True),
}
MODELS: dict[str, Callable[[], Any]] = {
    "XGBClassifier": lambda: XGBClassifier(n_estimators=15, max_depth=3, random_state=0),
    "XGBRegressor": lambda: XGBRegressor(n_estimators=15, max_depth=3, random_state=0),
    "LGBMClassifier": lambda: LGBMClassifier(n_estimators=15, random_state=0, verbose=-1),
    "LGBMRegressor": lambda: LGBMRegressor(n_estimators=15, random_state=0, verbose=-1),
}
CASES = [
    (model, data)
    for model in MODELS
    for data in (("diabetes", "breast_cancer") if "Regressor" in model else ("iris", "wine"))
]


def _infer(app: Any, rows: NDArray[Any]) -> dict[str, Any]:
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64"}
    body = {"inputs": [tensor | {"data": rows.tolist()}]}

    async def main() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cairn.test") as client:
            response = await client.post("/v2/models/m/infer", json=body)
            assert response.status_code == 200, response.text
            return {o["name"]: o for o in response.json()["outputs"]}

    return asyncio.run(main())


@pytest.mark.parametrize(("model_name", "dataset"), CASES)
def test_saved_and_served_as_the_model_predicts(
    tmp_path: Path, model_name: str, dataset: str
) -> None:
    X, y = DATASETS[dataset]()
    model = MODELS[model_name]().fit(X, y)
    library = type(model).__module__.split(".")[0]
    saved = training.save_model(model, path=tmp_path / "m", sample_input=X[:1])
    assert saved.metadata.frameworks[library]  # the version that wrote the pickle
    assert saved.metadata.model_class.endswith(model_name)

    app = build_app(ServeConfig(model_dir=tmp_path / "m", name="m"))
    try:
        assert app.model is not None
        assert app.model.spec.metadata()["platform"] == library
        outputs = _infer(app, X)
        predicted = np.asarray(outputs["predict"]["data"])
        if "Classifier" in model_name:
            assert predicted.tolist() == model.predict(X).tolist()
            proba = np.reshape(outputs["predict_proba"]["data"], outputs["predict_proba"]["shape"])
            assert np.abs(proba - model.predict_proba(X)).max() <= PROBA_ATOL
        else:
            want = model.predict(X)
            scale = float(np.abs(want).max())
            if want.dtype == np.float32:  # float32 precision, relative to the predictions' scale
                np.testing.assert_allclose(predicted, want, rtol=1e-5, atol=1e-5 * scale)
            else:
                np.testing.assert_allclose(predicted, want, rtol=1e-9)
    finally:
        app.close()


@pytest.mark.parametrize(("model_name", "dataset"), CASES)
def test_onnx_runtime_where_it_verifies_natively_where_it_does_not(
    model_name: str, dataset: str
) -> None:
    X, y = DATASETS[dataset]()
    model = MODELS[model_name]().fit(X, y)
    signature = training.infer_signature(model, X[:1])
    choice = choose_runtime(model, signature, "auto")
    if model_name.startswith("XGB"):
        # XGBoost compares float32 inputs with float32 thresholds: the converted model does
        # exactly that, and verifies.
        assert choice.runtime.name == "onnx", choice.reason
    else:
        # LightGBM compares float64 inputs with float64 thresholds; the converted model rounds
        # both to float32, which the rows beside each threshold expose.
        assert choice.runtime.name == "lightgbm", choice.reason
        assert "ONNX Runtime not used" in choice.reason
    outputs = ["predict", "predict_proba"] if "Classifier" in model_name else ["predict"]
    sample = np.vstack([X, verification_sample(model, signature)])
    got = choice.runtime.predict(sample, outputs)
    want = SklearnRuntime(model).predict(sample, outputs)
    if "Classifier" in model_name:
        assert np.array_equal(got["predict"], want["predict"])
        assert np.abs(got["predict_proba"] - want["predict_proba"]).max() <= PROBA_ATOL
    else:
        scale = float(np.abs(want["predict"]).max())
        np.testing.assert_allclose(got["predict"], want["predict"], rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("model_name", ["XGBClassifier", "LGBMClassifier"])
def test_the_verification_sample_sits_on_and_beside_every_threshold(model_name: str) -> None:
    X, y = load_wine(return_X_y=True)
    model = MODELS[model_name]().fit(X, y)
    sample = verification_sample(model, training.infer_signature(model, X[:1]))
    if model_name.startswith("XGB"):
        tree = model.get_booster().get_dump(dump_format="json")[0]
        root = json.loads(tree)
        feature, threshold = (
            int(root["split"].lstrip("f")),
            float(np.float32(root["split_condition"])),
        )
    else:
        root = model.booster_.dump_model()["tree_info"][0]["tree_structure"]
        feature, threshold = root["split_feature"], root["threshold"]
    column = set(sample[:, feature].tolist())
    assert threshold in column
    assert np.nextafter(threshold, np.inf) in column and np.nextafter(threshold, -np.inf) in column
