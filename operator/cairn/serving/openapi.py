"""The OpenAPI 3.1 document of the server, served at /openapi.json.

tests/support/served_api.py holds the served document to the server's answers, in-process and over
a socket: it is valid OpenAPI (openapi-spec-validator), every documented operation answers as
documented, and nothing undocumented answers.
"""

from typing import Any

from cairn import __version__
from cairn.serving.protocol import DATATYPES

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed request: bad JSON, shapes, datatypes, names or values",
        404: "Unknown model or version",
        408: "The request body did not arrive in time",
        413: "The request body is larger than the server accepts",
        415: "A Content-Type the server does not read (it reads JSON, and the binary tensor "
        "extension)",
        503: "The model is not loaded (or failed verification)",
    }
    return {str(code): _json(_ERROR, reasons[code]) for code in codes}


_MODEL = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}}


# A Media Type Object has no description of its own (OpenAPI 3.1): the schema carries it.
_BINARY = {
    "schema": {
        "type": "string",
        "format": "binary",
        "description": "The binary tensor extension: the JSON object (its size in the "
        "Inference-Header-Content-Length header), then the raw data of each tensor that has a "
        "binary_data_size parameter, in order: row-major, little-endian, BYTES elements each "
        "after a 4-byte length",
    }
}


def _infer(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "post": {
            "summary": "Inference (Open Inference Protocol V2)",
            "parameters": parameters,
            "requestBody": {
                "required": True,
                "description": "JSON; or, in the binary tensor extension, this JSON with "
                "binary_data_size parameters followed by the tensors' raw data "
                "(Inference-Header-Content-Length: the JSON's size)",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}
                },
            },
            "responses": {
                "200": {
                    "description": "Predictions: JSON, or JSON and raw outputs when any output "
                    "was asked for with binary_data (or binary_data_output)",
                    "headers": {
                        "Inference-Header-Content-Length": {
                            "description": "With raw outputs: the size of the JSON before them",
                            "schema": {"type": "integer"},
                        }
                    },
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/InferResponse"}
                        },
                        "application/octet-stream": _BINARY,
                    },
                },
                **_errors(400, 404, 408, 413, 415, 503),
            },
        }
    }


def _model_metadata(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": "Model metadata: inputs and outputs from the model's signature",
            "parameters": parameters,
            "responses": {
                "200": _json({"$ref": "#/components/schemas/ModelMetadata"}, "Model metadata"),
                **_errors(404, 503),
            },
        }
    }


def _model_ready(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    ready = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    }
    return {
        "get": {
            "summary": "Model readiness",
            "parameters": parameters,
            "responses": {
                "200": _json(ready, "The model is ready"),
                "503": _json(ready, "The model is not ready"),
                **_errors(404),
            },
        }
    }


_COUNT_PROPERTIES: dict[str, Any] = {
    "counts": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "missing": {"type": "integer", "minimum": 0},
}
_COUNTS = {"type": "object", "properties": _COUNT_PROPERTIES}


def _monitoring(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    feature = {"type": "object", "properties": {"name": {"type": "string"}, **_COUNT_PROPERTIES}}
    counters = {
        "type": "object",
        "description": "Counters since the server started (instance, startedAt): take the "
        "difference of two reads; a new instance counts from zero again",
        "properties": {
            "model": {"type": "string"},
            "version": {"type": ["string", "null"]},
            "instance": {"type": "string"},
            "startedAt": {"type": "string", "format": "date-time"},
            "baseline": {
                "type": ["object", "null"],
                "description": "The training data's profile (bins and their counts); null: "
                "none, and reason says why",
            },
            "reason": {"type": ["string", "null"]},
            "rows": {"type": "integer", "minimum": 0},
            "features": {"type": "array", "items": feature},
            "prediction": {"oneOf": [_COUNTS, {"type": "null"}]},
            "feedback": {"type": "object"},
        },
    }
    return {
        "get": {
            "summary": "Inputs and predictions counted into the baseline's bins, and feedback "
            "scores (not part of the Open Inference Protocol)",
            "parameters": parameters,
            "responses": {"200": _json(counters, "The counters"), **_errors(404, 503)},
        }
    }


def _feedback(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    item = {
        "type": "object",
        "required": ["id", "label"],
        "properties": {
            "id": {"type": "string", "description": "An answer's id (its Inference-Id)"},
            "label": {
                "description": "The true label or value; a list for an answer of "
                "several rows, one per row"
            },
        },
    }
    outcome = {
        "type": "object",
        "properties": {
            **{
                name: {"type": "integer", "minimum": 0}
                for name in ("matched", "unknown", "expired", "duplicate", "invalid")
            },
            "errors": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "post": {
            "summary": "Ground truth for earlier answers, by their id (not part of the Open "
            "Inference Protocol); each item is scored or counted apart",
            "parameters": parameters,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "array", "items": item}}},
            },
            "responses": {
                "200": _json(outcome, "What became of each item"),
                **_errors(400, 404, 408, 413, 415, 503),
            },
        }
    }


def _tensor(data_required: bool, any_size: bool = False) -> dict[str, Any]:
    """`any_size`: model metadata, where -1 is a dimension of any size (the batch)."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["name", "shape", "datatype"] + (["data"] if data_required else []),
        "properties": {
            "name": {"type": "string"},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": -1 if any_size else 0},
            },
            "datatype": {
                "type": "string",
                "enum": sorted(DATATYPES),
            },
            "parameters": {
                "type": "object",
                "properties": {
                    "binary_data_size": {
                        "description": "The tensor's data is raw, after the JSON: its size",
                        "type": "integer",
                        "minimum": 0,
                    }
                },
            },
            "data": {"description": "Row-major values, flat or nested", "type": "array"},
        },
    }
    return schema


def openapi_document() -> dict[str, Any]:
    model_params = [_MODEL]
    version_params = [_MODEL, _VERSION]
    simple = {"type": "object"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cairn model server",
            "version": __version__,
            "description": "Open Inference Protocol V2 (REST) and KServe V1 for one model. "
            'Errors are {"error": "..."}.',
        },
        "paths": {
            "/v2": {
                "get": {
                    "summary": "Server metadata",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/ServerMetadata"}, "Server")
                    },
                }
            },
            "/v2/health/live": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": _json(simple, "The server is live")},
                }
            },
            "/v2/health/ready": {
                "get": {
                    "summary": "Readiness: the model is loaded and verified, the server not "
                    "shutting down",
                    "responses": {
                        "200": _json(simple, "Ready"),
                        "503": _json(simple, "Not ready"),
                    },
                }
            },
            "/v2/models/{model_name}": _model_metadata(model_params),
            "/v2/models/{model_name}/versions/{model_version}": _model_metadata(version_params),
            "/v2/models/{model_name}/ready": _model_ready(model_params),
            "/v2/models/{model_name}/versions/{model_version}/ready": _model_ready(version_params),
            "/v2/models/{model_name}/infer": _infer(model_params),
            "/v2/models/{model_name}/monitoring": _monitoring(model_params),
            "/v2/models/{model_name}/versions/{model_version}/monitoring": _monitoring(
                version_params
            ),
            "/v2/models/{model_name}/feedback": _feedback(model_params),
            "/v2/models/{model_name}/versions/{model_version}/feedback": _feedback(version_params),
            "/v2/models/{model_name}/versions/{model_version}/infer": _infer(version_params),
            "/v1/models/{model_name}": {
                "get": {
                    "summary": "Model readiness (KServe V1)",
                    "parameters": model_params,
                    "responses": {
                        "200": _json(simple, "The model is ready"),
                        "503": _json(simple, "The model is not ready"),
                        **_errors(404),
                    },
                }
            },
            "/v1/models/{model_name}:predict": {
                "post": {
                    "summary": "Prediction (KServe V1): instances in, predicted labels out",
                    "parameters": model_params,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/V1Request"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/V1Response"}, "Predictions"),
                        **_errors(400, 404, 408, 413, 415, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format 0.0.4)",
                    "responses": {
                        "200": {
                            "description": "Metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json(simple, "OpenAPI 3.1")},
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "ServerMetadata": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "extensions": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "ModelMetadata": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "versions": {"type": "array", "items": {"type": "string"}},
                        "platform": {"type": "string"},
                        "inputs": {"type": "array", "items": _tensor(False, any_size=True)},
                        "outputs": {"type": "array", "items": _tensor(False, any_size=True)},
                        "parameters": {"type": "object"},
                    },
                },
                "InferRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "binary_data_output": {
                                    "description": "Every output raw, after the JSON (binary "
                                    "tensor extension), unless an output says otherwise",
                                    "type": "boolean",
                                }
                            },
                        },
                        "inputs": {"type": "array", "minItems": 1, "items": _tensor(True)},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {
                                        "type": "string",
                                        "enum": ["predict", "predict_proba"],
                                    },
                                    "parameters": {
                                        "type": "object",
                                        "properties": {
                                            "binary_data": {
                                                "description": "This output raw, after the JSON",
                                                "type": "boolean",
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
                "InferResponse": {
                    "type": "object",
                    "required": ["model_name", "outputs"],
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "outputs": {"type": "array", "items": _tensor(True)},
                    },
                },
                "V1Request": {
                    "type": "object",
                    "required": ["instances"],
                    "properties": {
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"oneOf": [{"type": "array"}, {"type": "object"}]},
                        }
                    },
                },
                "V1Response": {
                    "type": "object",
                    "properties": {"predictions": {"type": "array"}},
                },
            }
        },
    }
