"""The server's OpenAPI document, held to what the server answers.

A client written from /openapi.json relies on what the server does, so each check is made on the
server's answers, never against the code that writes the document:

- the served document is valid OpenAPI 3.1, as openapi-spec-validator (not this project) reads it;
- what is documented is answered: each documented operation, sent a request that validates
  against its documented request schema, succeeds, and its answers (success, malformed body,
  unknown model) have a documented status, content type and schema;
- what is answered is documented: of every path a client might try (the documented ones, the
  rest of the protocol's, a web framework's usual ones) and every method, what is not documented
  is 404, and a documented path answers an undocumented method 405 with the documented methods.

`Fetch` is how the checks reach the server: the in-process app or a real socket alike.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema_rs
import openapi_spec_validator

from tests.support.inference import v2

# fetch(method, path, **keyword arguments of httpx's request)
Fetch = Callable[..., httpx.Response]

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# The keys of a Path Item Object that are operations (the others: summary, parameters, ...).
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Every path a client might try: the Open Inference Protocol's and KServe V1's (which this server
# implements in part), this server's own (as docs/ name them), other model servers' extensions,
# a web framework's usual ones, and near misses. Each is documented, an alias, or 404; a route
# under a name none of these has would go unnoticed.
_SERVER_PATHS = (
    "/",
    "/v2",
    "/v2/",
    "/v2/models",
    "/v2/models/",
    "/v2/models//infer",
    "/v2/health",
    "/v2/health/",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/repository/index",
    "/v2/trace/setting",
    "/v2/logging",
    "/v2/systemsharedmemory/status",
    "/v2/cudasharedmemory/status",
    "/v1",
    "/v1/models",
    "/v1/models/{model_name}",
    "/v1/models/{model_name}/",
    "/v1/models/{model_name}:predict",
    "/v1/models/{model_name}:explain",
    "/health",
    "/healthz",
    "/ready",
    "/metrics",
    "/metrics/",
    "/openapi.json",
    "/openapi.yaml",
    "/docs",
    "/redoc",
)
_MODEL_PATHS = ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}")
_MODEL_ENDPOINTS = (
    "",
    "/",
    "/ready",
    "/infer",
    "/infer/",
    "/monitoring",
    "/feedback",
    "/explain",
    "/generate",
    "/generate_stream",
    "/stats",
    "/config",
    "/metadata",
    "/trace/setting",
    "/load",
    "/unload",
    "/versions",
    "/versions/",
    "/versions//infer",
)
PROBES = _SERVER_PATHS + tuple(model + end for model in _MODEL_PATHS for end in _MODEL_ENDPOINTS)
# Undocumented paths the server answers as a documented one (exactly as that one).
ALIASES = {"/v2/": "/v2"}


@dataclass(frozen=True)
class ServedApi:
    """The document a server serves, for the model it serves."""

    document: dict[str, Any]
    model_name: str
    model_version: str

    def concrete(self, template: str, model_name: str | None = None) -> str:
        return template.replace("{model_name}", model_name or self.model_name).replace(
            "{model_version}", self.model_version
        )

    def templates(self) -> list[str]:
        return list(self.document["paths"])

    def template_of(self, path: str) -> str | None:
        """The documented path that `path` is, whatever its parameters (/v1/models/a:explain
        is /v1/models/{model_name}, of a model named a:explain); of several, the most
        specific (/v1/models/a:predict is /v1/models/{model_name}:predict)."""
        matching = [
            template
            for template in self.templates()
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path)
        ]
        return max(matching, key=lambda t: len(re.sub(r"\{[^}]+\}", "", t)), default=None)

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for template, item in self.document["paths"].items():
            for method, operation in item.items():
                if method in _OPERATIONS:
                    yield template, method.upper(), operation

    def allowed(self, template: str) -> set[str]:
        """The documented methods of a path; HEAD wherever GET is (HTTP servers answer HEAD
        as GET without the body, and OpenAPI documents do not list it)."""
        methods = {m.upper() for m in self.document["paths"][template] if m in _OPERATIONS}
        return methods | ({"HEAD"} if "GET" in methods else set())

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        """`instance` against a schema of the document (its $refs resolved in the document)."""
        jsonschema_rs.validate({**schema, "components": self.document["components"]}, instance)

    def request_schema(self, template: str, method: str) -> dict[str, Any]:
        operation = self.document["paths"][template][method.lower()]
        return dict(operation["requestBody"]["content"]["application/json"]["schema"])

    def assert_documented(self, template: str, method: str, response: httpx.Response) -> None:
        """The answer's status, content type and body are what the document says."""
        operation = self.document["paths"][template]["get" if method == "HEAD" else method.lower()]
        where = f"{method} {response.request.url.path} answered {response.status_code}"
        responses = operation["responses"]
        documented = responses.get(str(response.status_code), responses.get("default"))
        assert documented is not None, f"{where}, which is not documented: {response.text}"
        content = documented.get("content", {})
        media = response.headers.get("content-type", "").split(";")[0].strip()
        assert media in content, f"{where} with {media!r}; documented: {sorted(content)}"
        if method == "HEAD":
            return
        if media == "application/json":
            self.validate(content[media]["schema"], response.json())


def fetch_document(fetch: Fetch, model_name: str, model_version: str) -> ServedApi:
    """GET /openapi.json, once openapi-spec-validator finds it valid OpenAPI."""
    response = fetch("GET", "/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1"), document["openapi"]
    openapi_spec_validator.validate(document)
    return ServedApi(document, model_name, model_version)


def request_body(template: str, rows: list[list[float]]) -> Any:
    """A request body the server accepts at `template`, for a model of these rows."""
    if template.endswith("/infer"):
        return v2(rows)
    if template.endswith(":predict"):
        return {"instances": rows}
    if template.endswith("/feedback"):
        return [{"id": "never-answered", "label": 0}]
    raise AssertionError(f"no request body known for POST {template}: add one here")


def check_documented_operations_answer(
    fetch: Fetch, api: ServedApi, rows: list[list[float]]
) -> None:
    """Each documented operation succeeds with a request its schema allows; its success and its
    errors (malformed body, unknown model) are answered as documented."""
    checked = 0
    for template, method, operation in api.operations():
        path = api.concrete(template)
        if method == "POST":
            body = request_body(template, rows)
            # The request the server accepts is one the document allows.
            api.validate(api.request_schema(template, method), body)
            answer = fetch(method, path, json=body)
            assert answer.status_code == 200, (path, answer.text)
            api.assert_documented(template, method, answer)
            for content, headers in (
                (b"{", {"content-type": "application/json"}),
                (b"{}", {"content-type": "text/plain"}),
            ):
                refused = fetch(method, path, content=content, headers=headers)
                assert 400 <= refused.status_code < 500, (path, content, refused.text)
                api.assert_documented(template, method, refused)
        else:
            answer = fetch(method, path)
            assert answer.status_code == 200, (path, answer.text)
            api.assert_documented(template, method, answer)
        if any(p["name"] == "model_name" for p in operation.get("parameters", [])):
            unknown = fetch(method, api.concrete(template, "no-such-model"), json=None)
            assert unknown.status_code == 404, (template, unknown.text)
            api.assert_documented(template, method, unknown)
        checked += 1
    assert checked >= 10, f"only {checked} documented operations"


def check_only_documented_paths_answer(fetch: Fetch, api: ServedApi) -> None:
    """Every path and method a client may try is documented, an alias of a documented path, a
    405 on a documented path (naming its documented methods), or a 404."""
    paths = [api.concrete(t) for t in (*api.templates(), *PROBES)]
    for path in paths:
        template = api.template_of(path)
        for method in METHODS:
            answer = fetch(method, path)
            where = f"{method} {path}: {answer.status_code} {answer.text[:200]}"
            if template is None and path in ALIASES:
                target = fetch(method, ALIASES[path])
                assert (answer.status_code, answer.content) == (
                    target.status_code,
                    target.content,
                ), where
            elif template is None:
                assert answer.status_code == 404, f"undocumented, and answered: {where}"
                if method != "HEAD":
                    assert isinstance(answer.json()["error"], str), where
            elif method in api.allowed(template):
                api.assert_documented(template, method, answer)
            else:
                assert answer.status_code == 405, where
                allow = {m.strip() for m in answer.headers["allow"].split(",")}
                assert allow == api.allowed(template), where
