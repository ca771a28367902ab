"""Mailbox options: parsing, defaults, one error listing every problem, JSON round trip."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.model import MailboxOptions
from shared.core.options import options_to_dict, parse_options
from shared.errors import InputError


def test_empty_body_gives_defaults() -> None:
    """No keys: the defaults of MailboxOptions."""
    assert parse_options({}) == MailboxOptions()


def test_missing_keys_keep_current() -> None:
    """A partial body changes only what it names."""
    current = MailboxOptions(weeks_back=2, mode="poll", poll_seconds=600, time_zone="Asia/Tokyo")
    assert parse_options({"weeksAhead": 10}, current) == MailboxOptions(
        weeks_back=2, weeks_ahead=10, mode="poll", poll_seconds=600, time_zone="Asia/Tokyo"
    )


def test_every_key_parsed() -> None:
    """All seven keys map onto their fields."""
    body = {
        "weeksBack": 0,
        "weeksAhead": 104,
        "mode": "poll",
        "pollSeconds": 60,
        "private": "mask",
        "bodyType": "text",
        "timeZone": "Europe/Berlin",
    }
    assert parse_options(body) == MailboxOptions(
        0, 104, "poll", 60, "mask", "text", "Europe/Berlin"
    )


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"weeksBack": 26}, "weeks_back", 26),
        ({"weeksAhead": 1}, "weeks_ahead", 1),
        ({"pollSeconds": 86400}, "poll_seconds", 86400),
        ({"timeZone": "W. Europe Standard Time"}, "time_zone", "W. Europe Standard Time"),
        ({"timeZone": "w. europe standard time"}, "time_zone", "W. Europe Standard Time"),
        ({"timeZone": "america/new_york"}, "time_zone", "America/New_York"),
        ({"timeZone": "utc"}, "time_zone", "UTC"),
        ({"timeZone": "UTC"}, "time_zone", "UTC"),
    ],
)
def test_edges_and_zone_names_accepted(body: dict[str, Any], field: str, value: object) -> None:
    """Boundary values are accepted; zone names are IANA or Windows, canonically spelled."""
    assert getattr(parse_options(body), field) == value


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"weeksBack": -1}, "weeksBack: must be from 0 to 26"),
        ({"weeksBack": 27}, "weeksBack: must be from 0 to 26"),
        ({"weeksBack": True}, "weeksBack: must be a whole number"),
        ({"weeksBack": 1.5}, "weeksBack: must be a whole number"),
        ({"weeksAhead": 0}, "weeksAhead: must be from 1 to 104"),
        ({"weeksAhead": 105}, "weeksAhead: must be from 1 to 104"),
        ({"weeksAhead": "52"}, "weeksAhead: must be a whole number"),
        ({"mode": "push"}, 'mode: must be "webhook" or "poll"'),
        ({"pollSeconds": 59}, "Microsoft forbids polling a mailbox more often than once a minute"),
        ({"pollSeconds": 86401}, "pollSeconds: must be at most 86400"),
        ({"pollSeconds": None}, "pollSeconds: must be a whole number"),
        ({"private": "hide"}, 'private: must be "mirror" or "mask"'),
        ({"bodyType": "markdown"}, 'bodyType: must be "html" or "text"'),
        ({"timeZone": "Mars/Olympus"}, "timeZone: must be an IANA time zone name"),
        ({"timeZone": "../etc/passwd"}, "timeZone: must be an IANA time zone name"),
        ({"timeZone": 1}, "timeZone: must be an IANA time zone name"),
        ({"weeks_back": 1}, "unknown option(s) weeks_back"),
        ({"reminderOnNew": "yes"}, "reminderOnNew: must be true or false"),
        ({"reminderMinutes": -1}, "reminderMinutes: must be from 0 to 20160"),
        ({"reminderMinutes": 20161}, "reminderMinutes: must be from 0 to 20160"),
        ({"writeTimeZone": "Mars/Olympus"}, "writeTimeZone: must be"),
        ({"writePrivate": 1}, "writePrivate: must be true or false"),
        ({"writeBodyType": "rtf"}, 'writeBodyType: must be "html" or "text"'),
    ],
)
def test_each_problem_named(body: dict[str, Any], expected: str) -> None:
    """Each bad value is refused with a message naming the field and what is allowed."""
    with pytest.raises(InputError) as info:
        parse_options(body)
    assert expected in info.value.message


def test_one_error_lists_every_problem() -> None:
    """Several problems come back together in one InputError."""
    body = {"weeksBack": 99, "mode": "x", "pollSeconds": 5, "timeZone": "Nowhere", "colour": 1}
    with pytest.raises(InputError) as info:
        parse_options(body)
    message = info.value.message
    assert message.startswith("5 problem(s)")
    for name in ("weeksBack", "mode", "pollSeconds", "timeZone", "colour"):
        assert name in message


def test_body_must_be_an_object() -> None:
    """A JSON array or string is not an options object."""
    with pytest.raises(InputError, match="JSON object"):
        parse_options([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        MailboxOptions(),
        MailboxOptions(0, 1, "poll", 60, "mask", "text", "Tokyo Standard Time"),
        MailboxOptions(26, 104, "webhook", 86400, "mirror", "html", "Europe/Berlin"),
        MailboxOptions(4, 52, "webhook", 300, "exclude", "html", "UTC", "tech-42"),
    ],
)
def test_round_trip_through_json_form(options: MailboxOptions) -> None:
    """options_to_dict writes the camelCase keys parse_options reads back to equal options."""
    as_dict = options_to_dict(options)
    assert set(as_dict) == {
        "weeksBack",
        "weeksAhead",
        "mode",
        "pollSeconds",
        "private",
        "reference",
        "bodyType",
        "timeZone",
        "reminderOnNew",
        "reminderMinutes",
        "writeTimeZone",
        "writePrivate",
        "writeBodyType",
    }
    assert parse_options(as_dict) == options


@pytest.mark.parametrize("value", ["x" * 257, "tab\there", 42])
def test_reference_refused_when_long_unprintable_or_not_text(value: object) -> None:
    """reference is printable text of at most 256 characters, else an InputError naming it."""
    with pytest.raises(InputError, match="reference: must be text"):
        parse_options({"reference": value})


def test_write_options_parsed_with_their_defaults() -> None:
    """The write options default to Outlook's new-event behaviour and parse every key."""
    assert parse_options({}) == MailboxOptions(
        reminder_on_new=True,
        reminder_minutes=15,
        write_time_zone="",
        write_private=False,
        write_body_type="html",
    )
    body = {
        "reminderOnNew": False,
        "reminderMinutes": 0,
        "writeTimeZone": "w. europe standard time",
        "writePrivate": True,
        "writeBodyType": "text",
    }
    parsed = parse_options(body)
    assert (parsed.reminder_on_new, parsed.reminder_minutes) == (False, 0)
    assert (parsed.write_time_zone, parsed.write_private) == ("W. Europe Standard Time", True)
    assert parsed.write_body_type == "text"
    assert parse_options({"writeTimeZone": ""}, parsed).write_time_zone == ""
