"""Pure: time zone names as Graph and users write them (IANA or Windows) resolved to tzinfo.

Rule: one place decides which zone names are valid. IANA names come from the tz database
(`zoneinfo`, backed by the `tzdata` package); Windows names ("W. Europe Standard Time") map to
IANA through the CLDR table that `tzlocal.windows_tz.win_tz` carries. Graph also writes UTC as
"tzone://Microsoft/Utc". Matching is exact first, then case-insensitive, so "utc" or
"europe/berlin" resolve to their canonical spelling. The tz database is read as static data
(installed with the app), never fetched.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, tzinfo

from tzlocal.windows_tz import win_tz

_UTC_NAMES = frozenset({"utc", "tzone://microsoft/utc", "etc/utc", "z", "gmt", "etc/gmt"})


@functools.lru_cache(maxsize=1)
def _iana_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@functools.lru_cache(maxsize=1)
def _windows_names() -> dict[str, str]:
    return {name.lower(): name for name in win_tz}


def canonical_zone_name(name: str) -> str | None:
    """The canonical spelling of an IANA or Windows zone name, or None when it is unknown."""
    if not name.strip():
        return None
    if name in win_tz:
        return name
    lowered = name.strip().lower()
    if lowered in _UTC_NAMES:
        return "UTC"
    if lowered in _windows_names():
        return _windows_names()[lowered]
    return _iana_names().get(lowered)


@functools.lru_cache(maxsize=256)
def resolve_zone(name: str) -> tzinfo | None:
    """A tzinfo for an IANA or Windows zone name, or None when the name is unknown."""
    canonical = canonical_zone_name(name)
    if canonical is None:
        return None
    if canonical == "UTC":
        return UTC
    iana = win_tz.get(canonical, canonical)
    try:
        return zoneinfo.ZoneInfo(iana)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def iana_zone_name(name: str) -> str | None:
    """The IANA name of an IANA or Windows zone name ("Pacific Standard Time" is
    "America/Los_Angeles"; every spelling of UTC is "UTC"), or None when it is unknown."""
    canonical = canonical_zone_name(name)
    if canonical is None:
        return None
    return win_tz.get(canonical, canonical)
