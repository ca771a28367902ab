"""One Graph request and its answer, as the pipeline and the handlers pass them around.

Rule: a `GraphCall` is what arrived (method, still percent-encoded path after `/v1.0`, query,
lower-case headers, body), whether directly or inside a `$batch`; a `GraphResult` is what goes
back, its JSON body serialised once by `encode_json`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from graphsim.errors import GraphRequestError


@dataclass
class GraphCall:
    method: str
    raw_path: str  # after the version prefix, percent-encoded, e.g. /users/x/events
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            raise GraphRequestError(400, "BadRequest", "Empty Payload. JSON content expected.")
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise GraphRequestError(
                400, "BadRequest", f"Unable to read JSON request payload: {exc}. Send valid JSON."
            ) from None
        if not isinstance(value, dict):
            raise GraphRequestError(400, "BadRequest", "The request body must be a JSON object.")
        return value


@dataclass
class GraphResult:
    status: int
    body: Any = None  # dict -> JSON, str -> text, None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # the JSON body already serialised (cached answers)


def encode_json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
