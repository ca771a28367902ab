"""Secrets port, local flavour: named errors without values, and redaction of values in logs."""

from __future__ import annotations

import logging

import pytest

from shared import redact
from shared.errors import SecretNotFound
from shared.secrets import EnvSecrets, env_name

VALUE = "s3cr3t-Value-Never-Logged"


def test_env_secret_is_read_from_its_variable() -> None:
    """Secret `graph-client-secret` is read from SECRET_GRAPH_CLIENT_SECRET."""
    assert env_name("graph-client-secret") == "SECRET_GRAPH_CLIENT_SECRET"
    assert EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": VALUE}).get("graph-client-secret") == VALUE


def test_missing_secret_names_the_secret_and_where_to_put_it() -> None:
    """A missing secret raises SecretNotFound naming the secret and its variable."""
    with pytest.raises(SecretNotFound) as info:
        EnvSecrets({}).get("graph-client-secret")
    assert "graph-client-secret" in str(info.value)
    assert "SECRET_GRAPH_CLIENT_SECRET" in str(info.value)


def test_a_secret_read_is_masked_in_every_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Once read, a secret value is replaced by *** in log messages and tracebacks."""
    EnvSecrets({"SECRET_X": VALUE}).get("x")
    redact.install()
    logging.getLogger().addHandler(caplog.handler)
    caplog.handler.addFilter(redact.REDACTOR)
    log = logging.getLogger("calsync.test")
    log.warning("header dump: Authorization=%s", VALUE)
    try:
        raise RuntimeError(f"boom {VALUE}")
    except RuntimeError:
        log.exception("failed")
    assert caplog.records
    assert VALUE not in caplog.text
    assert "***" in caplog.text
