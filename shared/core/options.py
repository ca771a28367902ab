"""Pure: per-mailbox sync options, parsed from their JSON form and written back to it.

Rule: `parse_options` accepts exactly the keys of `OPTION_KEYS` (camelCase, as the enrolment API
speaks), checks every one, and raises ONE InputError listing every problem, each naming the field
and what is allowed. Missing keys keep the `current` options (or the defaults of MailboxOptions),
so a PATCH-style body changes only what it names. `options_to_dict` writes the same keys, and
`parse_options(options_to_dict(o)) == o`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from shared.core.model import MIN_POLL_SECONDS, MailboxOptions
from shared.core.zones import canonical_zone_name
from shared.errors import InputError

MAX_WEEKS_BACK = 26
MAX_WEEKS_AHEAD = 104
MAX_POLL_SECONDS = 86_400
MODES = ("webhook", "poll")
PRIVATE_HANDLING = ("mirror", "mask", "exclude")
MAX_REFERENCE_CHARS = 256
BODY_TYPES = ("html", "text")
# Graph takes any non-negative Int32; Outlook offers up to two weeks (20,160 minutes).
MAX_REMINDER_MINUTES = 20_160

# JSON key -> MailboxOptions field.
OPTION_KEYS: dict[str, str] = {
    "weeksBack": "weeks_back",
    "weeksAhead": "weeks_ahead",
    "mode": "mode",
    "pollSeconds": "poll_seconds",
    "private": "private",
    "bodyType": "body_type",
    "timeZone": "time_zone",
    "reference": "reference",
    "reminderOnNew": "reminder_on_new",
    "reminderMinutes": "reminder_minutes",
    "writeTimeZone": "write_time_zone",
    "writePrivate": "write_private",
    "writeBodyType": "write_body_type",
}


def _int_in(key: str, value: Any, low: int, high: int, problems: list[str]) -> int | None:
    # bool is an int subclass in Python; JSON true is not a number of weeks.
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{key}: must be a whole number from {low} to {high}, got {value!r}")
        return None
    if not low <= value <= high:
        problems.append(f"{key}: must be from {low} to {high}, got {value}")
        return None
    return value


def _choice(key: str, value: Any, allowed: tuple[str, ...], problems: list[str]) -> str | None:
    if not isinstance(value, str) or value not in allowed:
        choices = " or ".join(f'"{a}"' for a in allowed)
        problems.append(f"{key}: must be {choices}, got {value!r}")
        return None
    return value


def _poll_seconds(value: Any, problems: list[str]) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(
            f"pollSeconds: must be a whole number of seconds from {MIN_POLL_SECONDS} to "
            f"{MAX_POLL_SECONDS}, got {value!r}"
        )
        return None
    if value < MIN_POLL_SECONDS:
        problems.append(
            f"pollSeconds: must be at least {MIN_POLL_SECONDS}, got {value}: Microsoft forbids "
            "polling a mailbox more often than once a minute"
        )
        return None
    if value > MAX_POLL_SECONDS:
        problems.append(f"pollSeconds: must be at most {MAX_POLL_SECONDS} (one day), got {value}")
        return None
    return value


def _time_zone(value: Any, problems: list[str]) -> str | None:
    canonical = canonical_zone_name(value) if isinstance(value, str) else None
    if canonical is None:
        problems.append(
            f'timeZone: must be an IANA time zone name (e.g. "Europe/Berlin") or a Windows one '
            f'(e.g. "W. Europe Standard Time"), got {value!r}'
        )
    return canonical


def _reference(value: Any, problems: list[str]) -> str | None:
    if (
        not isinstance(value, str)
        or len(value) > MAX_REFERENCE_CHARS
        or any(not ch.isprintable() for ch in value)
    ):
        problems.append(
            f"reference: must be text of at most {MAX_REFERENCE_CHARS} printable characters "
            f"(your own id for this mailbox's user), got {value!r:.80}"
        )
        return None
    return value


def _bool(key: str, value: Any, problems: list[str]) -> bool | None:
    if not isinstance(value, bool):
        problems.append(f"{key}: must be true or false, got {value!r}")
        return None
    return value


def _write_zone(value: Any, problems: list[str]) -> str | None:
    """ "" (the mailbox's `timeZone`) or a zone name, stored canonical."""
    if value == "":
        return ""
    canonical = canonical_zone_name(value) if isinstance(value, str) else None
    if canonical is None:
        problems.append(
            f'writeTimeZone: must be "" (the mailbox\'s timeZone) or an IANA or Windows time '
            f"zone name, got {value!r}"
        )
    return canonical


def parse_options(body: Mapping[str, Any], current: MailboxOptions | None = None) -> MailboxOptions:
    """Validate a JSON options object over `current` (or the defaults); InputError lists all."""
    if not isinstance(body, Mapping):
        raise InputError(
            f"options must be a JSON object with keys {', '.join(OPTION_KEYS)}, "
            f"got {type(body).__name__}"
        )
    problems: list[str] = []
    unknown = sorted(str(k) for k in body if k not in OPTION_KEYS)
    if unknown:
        problems.append(
            f"unknown option(s) {', '.join(unknown)}: allowed keys are {', '.join(OPTION_KEYS)}"
        )
    changes: dict[str, Any] = {}
    checks: dict[str, Callable[[Any], Any]] = {
        "weeksBack": lambda v: _int_in("weeksBack", v, 0, MAX_WEEKS_BACK, problems),
        "weeksAhead": lambda v: _int_in("weeksAhead", v, 1, MAX_WEEKS_AHEAD, problems),
        "mode": lambda v: _choice("mode", v, MODES, problems),
        "pollSeconds": lambda v: _poll_seconds(v, problems),
        "private": lambda v: _choice("private", v, PRIVATE_HANDLING, problems),
        "bodyType": lambda v: _choice("bodyType", v, BODY_TYPES, problems),
        "timeZone": lambda v: _time_zone(v, problems),
        "reference": lambda v: _reference(v, problems),
        "reminderOnNew": lambda v: _bool("reminderOnNew", v, problems),
        "reminderMinutes": lambda v: _int_in(
            "reminderMinutes", v, 0, MAX_REMINDER_MINUTES, problems
        ),
        "writeTimeZone": lambda v: _write_zone(v, problems),
        "writePrivate": lambda v: _bool("writePrivate", v, problems),
        "writeBodyType": lambda v: _choice("writeBodyType", v, BODY_TYPES, problems),
    }
    for key, check in checks.items():
        if key in body:
            value = check(body[key])
            if value is not None:
                changes[OPTION_KEYS[key]] = value
    if problems:
        raise InputError(
            f"{len(problems)} problem(s) with the mailbox options; fix them and retry:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return replace(current or MailboxOptions(), **changes)


def options_to_dict(options: MailboxOptions) -> dict[str, Any]:
    """The JSON form of `options`, with the camelCase keys `parse_options` reads."""
    return {key: getattr(options, name) for key, name in OPTION_KEYS.items()}
