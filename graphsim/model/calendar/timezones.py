"""Time zones and date-time text as Graph speaks them. Pure: no I/O.

Rule: Graph accepts Windows zone names ("Pacific Standard Time") and IANA names
("Europe/Berlin") in every `dateTimeTimeZone`, and answers with 7-digit fractions
("2026-11-21T09:00:00.0000000") in the zone the client asked for (UTC by default).
An unknown name is a 400 `TimeZoneNotSupportedException`, as Graph answers. Which names are
valid is decided once for the whole project, by `shared.core.zones`; ISO 8601 instants are read
by `shared.core.times`. This module adds only what is Graph's own: the error, 7-digit text and
`dateTimeTimeZone` objects. Sources: https://learn.microsoft.com/graph/api/resources/datetimetimezone,
https://learn.microsoft.com/graph/api/user-post-events (Prefer: outlook.timezone).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

from graphsim.errors import GraphRequestError
from shared.core.times import iso_utc, parse_iso
from shared.core.zones import resolve_zone

# A name Outlook writes into originalStartTimeZone that is neither a Windows nor an IANA name
# (shared.core.zones already knows "tzone://Microsoft/Utc").
_ALIASES = {"tzone://Microsoft/Custom": "UTC"}

# "2026-11-21T09:00:00.0000000", "2026-11-21T09:00", "2026-11-21" (all-day), optional offset.
_LOCAL_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?$"
)


@lru_cache(maxsize=1024)
def to_zone(name: str) -> tzinfo:
    """The zone for a Windows or IANA name; 400 TimeZoneNotSupportedException otherwise."""
    zone = resolve_zone(_ALIASES.get(name, name)) if isinstance(name, str) else None
    if zone is None:
        raise _unsupported(name)
    return zone


def _unsupported(name: object) -> GraphRequestError:
    # Graph's own words for an unknown zone name (seen on POST /events with a bad timeZone).
    return GraphRequestError(
        400,
        "TimeZoneNotSupportedException",
        "A valid TimeZone value must be specified. The following TimeZone value is not "
        f"supported: '{name}'. Use a Windows name such as 'Pacific Standard Time' or an "
        "IANA name such as 'Europe/Berlin'.",
    )


def parse_local(value: object, field: str) -> tuple[datetime, bool]:
    """Parse a dateTime text into (naive local time, had_explicit_offset->converted to UTC)."""
    m = _LOCAL_RE.match(value) if isinstance(value, str) else None
    if m is None:
        raise GraphRequestError(
            400,
            "ErrorInvalidRequest",
            f"{field}: '{value}' is not a date-time; send ISO 8601 such as "
            "'2026-11-21T09:00:00' with the zone in timeZone.",
        )
    year, month, day, hh, mm, ss, frac, offset = m.groups()
    micro = int((frac or "0").ljust(7, "0")[:6])
    try:
        naive = datetime(
            int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), micro
        )
    except ValueError as exc:
        raise GraphRequestError(
            400, "ErrorInvalidRequest", f"{field}: '{value}' is not a valid date-time ({exc})."
        ) from None
    if offset is None:
        return naive, False
    # An explicit offset wins over timeZone: normalise to UTC wall time.
    sign = 1 if offset == "Z" or offset[0] == "+" else -1
    delta = (
        timedelta()
        if offset == "Z"
        else timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    )
    return naive - sign * delta, True


def dtz_to_utc(value: object, field: str) -> tuple[datetime, str]:
    """A Graph dateTimeTimeZone object -> (aware UTC instant, zone name as sent)."""
    if not isinstance(value, dict):
        raise GraphRequestError(
            400,
            "ErrorInvalidRequest",
            f"{field} must be an object like "
            '{"dateTime": "2026-11-21T09:00:00", "timeZone": "UTC"}.',
        )
    unknown = sorted(set(value) - {"dateTime", "timeZone", "@odata.type"})
    if unknown:
        raise GraphRequestError(
            400,
            "RequestBodyRead",
            f"The property '{unknown[0]}' does not exist on type "
            f"'microsoft.graph.dateTimeTimeZone' ({field}); use only dateTime and timeZone.",
        )
    zone_name = value.get("timeZone") or "UTC"
    zone = to_zone(zone_name)
    naive, was_utc = parse_local(value.get("dateTime"), f"{field}.dateTime")
    if was_utc:
        return naive.replace(tzinfo=UTC), zone_name
    return local_to_utc(naive, zone), zone_name


def local_to_utc(naive: datetime, zone: tzinfo) -> datetime:
    """Wall time in a zone -> UTC (a time in a DST gap moves forward, as Outlook does)."""
    return naive.replace(tzinfo=zone).astimezone(UTC)


def format_local(instant: datetime, zone: tzinfo) -> str:
    """An instant as Graph's dateTime text in a zone: 7 fraction digits, no offset."""
    local = instant.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0"


def format_naive(local: datetime) -> str:
    """A wall time as Graph's dateTime text (all-day events float: midnight in any zone)."""
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0"


def format_timestamp(instant: datetime) -> str:
    """Graph's DateTimeOffset text (createdDateTime, expirationDateTime...): UTC, 7 fraction
    digits and Z. `iso_utc` leaves out a zero fraction, Graph never does."""
    whole = iso_utc(instant.replace(microsecond=0))
    return f"{whole.removesuffix('Z')}.{instant.microsecond:06d}0Z"


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant as Graph accepts it, in UTC (naive is UTC); ValueError otherwise."""
    text = value.strip()
    moment = parse_iso(text[:-1] + "Z" if text.endswith("z") else text)
    if moment is None:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    return moment


def format_offset(instant: datetime, zone: tzinfo) -> str:
    """originalStart (Edm.DateTimeOffset): Z in UTC, else the zone's offset."""
    local = instant.astimezone(zone)
    if local.utcoffset() == timedelta(0):
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.isoformat(timespec="seconds")


def parse_timestamp(value: str) -> datetime:
    """Parse an Edm.DateTimeOffset text that this package produced back into UTC."""
    naive, had_offset = parse_local(value, "timestamp")
    if not had_offset:
        raise ValueError(f"timestamp without offset: {value!r}")
    return naive.replace(tzinfo=UTC)


def parse_date(value: object, field: str) -> date:
    """An Edm.Date text ("2026-11-21")."""
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise GraphRequestError(
            400,
            "ErrorInvalidRequest",
            f"{field}: '{value}' is not a date; send it as YYYY-MM-DD.",
        ) from None
