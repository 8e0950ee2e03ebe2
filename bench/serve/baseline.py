# Runs in the benchmark's own venv (starlette is not a dependency of cairn): not type-checked here.
# mypy: ignore-errors
"""The bare Starlette baseline: parse the JSON body, call model.predict, answer JSON.

The practical ceiling of a plain Python HTTP server without batching (as in
../shared/anchors/RESULTS.md). Run with uvicorn: MODEL=path/model.joblib uvicorn baseline:app
"""

import os

import joblib
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

model = joblib.load(os.environ["MODEL"])


async def infer(request: Request) -> JSONResponse:
    body = await request.json()
    rows = np.asarray(body["inputs"][0]["data"], dtype=np.float64).reshape(-1, 4)
    return JSONResponse({"predictions": model.predict(rows).tolist()})


app = Starlette(routes=[Route("/v2/models/iris/infer", infer, methods=["POST"])])
