"""Errors the simulator answers with, in Graph's shape. Pure: no I/O.

Graph's error body is {"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}; every module of the simulator raises `GraphRequestError` and the server
renders it in exactly one place.
"""

from __future__ import annotations

from typing import Any


class GraphRequestError(Exception):
    """A request the simulated Graph refuses: HTTP status, Graph error code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, *, date: str, request_id: str, client_request_id: str = "") -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": date,
                    "request-id": request_id,
                    "client-request-id": client_request_id or request_id,
                },
            }
        }
