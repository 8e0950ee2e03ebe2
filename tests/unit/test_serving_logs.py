"""The model server never logs what it is asked: with its access log on and at debug level, no
log line carries a request's inputs, well-formed or not (they may hold sensitive features)."""

import logging
from pathlib import Path

import pytest
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn.training import TrainingSession
from tests.unit.test_serving_http import make_app, request

# Values no log line has any other reason to contain.
SECRET = 7.123456789
SECRET_WORD = "applicant-sex-female"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    saver = TrainingSession({}, finish_at_exit=False)
    saver.save_model(model, path=tmp_path / "model", sample_input=X[:2])
    return tmp_path / "model"


def test_no_log_line_holds_a_request_body(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(model_dir, access_log=True, log_level="debug")
    row = [SECRET, 3.0, 5.0, 2.0]
    words = [SECRET_WORD] * 4
    bodies = [
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [row]}]},
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "BYTES", "data": words}]},
        {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [row]}]},
    ]
    with caplog.at_level(logging.DEBUG):
        statuses = [
            request(app, "POST", "/v2/models/iris/infer", json=body).status_code for body in bodies
        ]
        statuses.append(
            request(app, "POST", "/v1/models/iris:predict", json={"instances": [row]}).status_code
        )
    app.close()

    assert statuses[0] == 200 and statuses[-1] == 200 and 400 in statuses
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/v2/models/iris/infer" in logged  # the access log ran
    assert str(SECRET) not in logged and SECRET_WORD not in logged
