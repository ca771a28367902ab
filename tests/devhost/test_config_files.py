"""local.settings.json and host.json as the dev host reads them (files in tmp_path, no servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.hostconfig import HostOptions, QueueOptions, load_host_json, parse_timespan
from devhost.settings import apply_values, read_local_settings
from shared.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_values_apply_without_overriding_what_is_set(tmp_path: Path) -> None:
    """Values become settings, but a variable already in the environment keeps its value."""
    path = write(
        tmp_path / "local.settings.json",
        {"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file"}, "Host": {}},
    )
    env = {"A": "from-shell"}
    applied = apply_values(read_local_settings(path).values, env)
    assert env == {"A": "from-shell", "B": "from-file"}
    assert applied == ["B"]


def test_local_http_port_is_read(tmp_path: Path) -> None:
    """Host.LocalHttpPort is the dev host's default port."""
    path = write(tmp_path / "l.json", {"Values": {}, "Host": {"LocalHttpPort": 7072}})
    assert read_local_settings(path).local_http_port == 7072


def test_missing_file_is_empty(tmp_path: Path) -> None:
    """No local.settings.json means no values and no port, not an error."""
    settings = read_local_settings(tmp_path / "absent.json")
    assert settings.values == {}
    assert settings.local_http_port is None


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"IsEncrypted": True, "Values": {}}, "func settings decrypt"),
        ({"Values": {"PORT": 7}}, "Values.PORT is a int; app settings are strings"),
        ({"Values": []}, "Values must be a JSON object"),
        ({"Values": {}, "Host": {"LocalHttpPort": "x"}}, "LocalHttpPort 'x' must be a port"),
        ([], "must hold a JSON object"),
    ],
)
def test_bad_local_settings_are_refused(tmp_path: Path, doc: object, words: str) -> None:
    """An encrypted file, a non-string value or a bad port is a ConfigError saying what to do."""
    with pytest.raises(ConfigError, match=words):
        read_local_settings(write(tmp_path / "l.json", doc))


def test_local_settings_that_are_not_json_are_refused(tmp_path: Path) -> None:
    """A file that does not parse is named in the error."""
    path = tmp_path / "l.json"
    path.write_text("{Values: }")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        read_local_settings(path)


def test_example_settings_file_lists_every_app_setting() -> None:
    """local.settings.json.example is valid, unencrypted and names every setting in SETTINGS."""
    from shared.settings import SETTINGS

    example = read_local_settings(REPO / "local.settings.json.example")
    for name in [s.name for s in SETTINGS] + ["FUNCTIONS_WORKER_RUNTIME", "DEVHOST_FUNCTION_KEY"]:
        assert name in example.values, name
    assert example.values["FUNCTIONS_WORKER_RUNTIME"] == "python"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:10", 10.0), ("00:01:00", 60.0), ("1.02:03:04", 93784.0), ("00:00:00.5", 0.5)],
)
def test_timespans(text: str, seconds: float) -> None:
    """.NET TimeSpan strings, days and fractions included, become seconds."""
    assert parse_timespan(text) == seconds


def test_project_host_json_is_read() -> None:
    """The project's host.json gives the queue options the Functions host will use."""
    options = load_host_json(REPO / "host.json")
    assert options.route_prefix == "api"
    assert options.queues.message_encoding == "base64"
    assert options.queues.max_dequeue_count >= 1


def test_host_json_defaults_are_the_hosts(tmp_path: Path) -> None:
    """Absent keys take the host's defaults (batch 16, threshold 8, 1 min polling, 5 dequeues)."""
    assert load_host_json(tmp_path / "absent.json") == HostOptions()
    options = load_host_json(write(tmp_path / "host.json", {"version": "2.0"}))
    assert options.queues == QueueOptions()
    assert (options.queues.batch_size, options.queues.new_batch_threshold) == (16, 8)
    assert options.queues.max_polling_interval == 60.0
    assert options.queues.visibility_timeout == 0.0


def test_host_json_values_are_used(tmp_path: Path) -> None:
    """Every supported queue key and the route prefix are taken from host.json."""
    doc = {
        "extensions": {
            "http": {"routePrefix": "/v1/"},
            "queues": {
                "batchSize": 4,
                "newBatchThreshold": 1,
                "maxPollingInterval": "00:00:02",
                "visibilityTimeout": "00:00:30",
                "maxDequeueCount": 2,
                "messageEncoding": "none",
            },
        }
    }
    options = load_host_json(write(tmp_path / "host.json", doc))
    assert options.route_prefix == "v1"
    assert options.queues == QueueOptions(
        batch_size=4,
        new_batch_threshold=1,
        max_polling_interval=2.0,
        visibility_timeout=30.0,
        max_dequeue_count=2,
        message_encoding="none",
    )


def test_bad_host_json_lists_every_problem(tmp_path: Path) -> None:
    """Several bad queue keys are reported together, each by its host.json path."""
    doc = {
        "extensions": {
            "queues": {"batchSize": 64, "maxPollingInterval": "2s", "messageEncoding": "utf8"}
        }
    }
    with pytest.raises(ConfigError) as caught:
        load_host_json(write(tmp_path / "host.json", doc))
    problems = "\n".join(caught.value.problems)
    assert "extensions.queues.batchSize 64" in problems
    assert "extensions.queues.maxPollingInterval '2s' is not a TimeSpan" in problems
    assert "messageEncoding 'utf8'" in problems
