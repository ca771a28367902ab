"""The dev host's access log never shows a function key given as `?code=`."""

from __future__ import annotations

import logging

import httpx
import pytest

from devhost import DevHost

from . import sample_app
from .conftest import FUNCTION_KEY

pytestmark = pytest.mark.integration


def test_access_log_redacts_code_query_parameter(
    azurite: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A request authorised by ?code=<key> is logged with the key replaced, the rest intact."""
    settings = {"AzureWebJobsStorage": azurite, "DEVHOST_FUNCTION_KEY": FUNCTION_KEY}
    with (
        caplog.at_level(logging.INFO),
        DevHost(sample_app.app, settings, access_log=True) as host,
        httpx.Client(base_url=host.url, timeout=10, trust_env=False) as client,
    ):
        r = client.get("/api/keyed/x", params={"a": "1", "code": FUNCTION_KEY, "b": "2"})
        assert r.status_code == 200
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert access, "no access log line was written"
    assert all(FUNCTION_KEY not in line for line in access)
    assert any("/api/keyed/x?a=1&code=***&b=2" in line for line in access)
