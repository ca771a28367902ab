"""The checked-in OpenAPI document and function_app agree: every HTTP route with its methods
and auth level is described, and nothing else is."""

from __future__ import annotations

from typing import Any

import function_app
from shared.services.apidoc import openapi_document
from tests.test_bindings import _declared as declared_bindings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _routes() -> set[tuple[str, str, str]]:
    """(path, method, auth) of every HTTP trigger (read once per process: the SDK's
    get_functions may run only once, so tests.test_bindings' cached reading is shared)."""
    out = set()
    for binding in declared_bindings().values():
        if binding["type"] == "httpTrigger":
            for method in binding["methods"]:
                out.add(("/" + binding["route"], method.upper(), binding["authLevel"]))
    return out


def _documented(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    out = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                security = op.get("security", doc.get("security"))
                out.add((path, method.upper(), "anonymous" if security == [] else "function"))
    return out


def test_document_and_routes_agree() -> None:
    """Path, method and auth level of every HTTP trigger equal the document's, both ways."""
    doc, declared = openapi_document(), _routes()
    documented = _documented(doc)
    assert declared - documented == set(), "routes missing from shared/openapi.json"
    assert documented - declared == set(), "documented routes that function_app lacks"


def test_document_is_openapi_31_served_under_api() -> None:
    """An OpenAPI 3.1 document for the /api base path, with the function key scheme."""
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": "/api"}]
    assert doc["components"]["securitySchemes"]["functionKey"]["name"] == "x-functions-key"


def test_document_served_with_an_etag() -> None:
    """GET /api/openapi.json returns the document, anonymous, with an ETag and 304 on repeat."""
    import azure.functions as func

    req = func.HttpRequest("GET", "/api/openapi.json", body=b"", headers={})
    first = function_app.openapi(req)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    again = function_app.openapi(
        func.HttpRequest("GET", "/api/openapi.json", body=b"", headers={"If-None-Match": etag})
    )
    assert again.status_code == 304
    assert again.get_body() == b""
