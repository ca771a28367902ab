"""The API's OpenAPI 3.1 description, `shared/openapi.json`, checked in beside the code and
served as is (anonymous, like the health probe: it holds no secret and lets tools discover the
API). tests/test_openapi.py fails when it and function_app's routes disagree."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document, read once per process."""
    doc: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return doc
