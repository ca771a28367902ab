"""The admin API as the CLI sees it: one httpx client, problems turned into one-line errors that
say what went wrong and what to do (TLS and connection failures included), never a traceback."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote

import click
import httpx


class CliError(click.ClickException):
    """One line on stderr, exit code 1."""


class Api:
    def __init__(self, url: str, key: str, ca: str | None, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        try:
            verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        except (OSError, ssl.SSLError) as exc:
            raise CliError(
                f"--ca / CALSYNC_CA_BUNDLE {ca!r} is not a readable PEM file: {exc}"
            ) from None
        self._http = httpx.Client(
            base_url=self.url + "/api",
            headers={"x-functions-key": key} if key else {},
            verify=verify,
            timeout=timeout,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
                raise CliError(
                    f"TLS: the certificate of {self.url} is not trusted ({text}); pass its CA with "
                    "--ca or CALSYNC_CA_BUNDLE"
                ) from None
            raise CliError(
                f"cannot connect to {self.url} ({text or type(exc).__name__}); check --url or "
                "CALSYNC_URL and that the app is running"
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"{self.url} did not answer in time; retry, or check its logs") from None
        except httpx.HTTPError as exc:
            raise CliError(f"talking to {self.url} failed: {type(exc).__name__}: {exc}") from None
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code == 401:
            raise CliError("401: the function key was refused; pass --key or CALSYNC_FUNCTION_KEY")
        if response.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else response.text[:200]
            raise CliError(f"{response.status_code}: {detail}")
        return body


def mailbox_path(tenant: str, user: str) -> str:
    # "user:handle" names another calendar of the mailbox: ':' stays as it is in the path.
    return f"/mailboxes/{quote(tenant, safe='')}/{quote(user, safe='@:')}"
