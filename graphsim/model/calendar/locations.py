"""Event locations as Graph stores and returns them. Pure: no I/O.

Rule: `location` and `locations` always agree (resources/event: "The location and locations
properties always correspond with each other"); an event without a place still has a
location object with an empty displayName, as Graph answers. A named place gets a private
uniqueId when the client gave none.
"""

from __future__ import annotations

from typing import Any

from graphsim.errors import GraphRequestError

_LOCATION_TYPES = (
    "default",
    "conferenceRoom",
    "homeAddress",
    "businessAddress",
    "geoCoordinates",
    "streetAddress",
    "hotel",
    "restaurant",
    "localBusiness",
    "postalAddress",
)


def _read_error(message: str) -> GraphRequestError:
    return GraphRequestError(400, "RequestBodyRead", message)


def _convert_error(value: object, type_name: str, field: str) -> GraphRequestError:
    return _read_error(
        f"Cannot convert the literal '{value}' to the expected type '{type_name}' ({field})."
    )


def empty_location() -> dict[str, Any]:
    """The location Graph shows on an event that has none."""
    return {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }


def parse_location(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return empty_location()
    if not isinstance(value, dict):
        raise _convert_error(value, "microsoft.graph.location", field)
    loc = empty_location()
    for key, item in value.items():
        if key.startswith("@odata."):
            continue
        if key in ("displayName", "locationUri", "uniqueId", "locationEmailAddress"):
            if item is not None and not isinstance(item, str):
                raise _convert_error(item, "Edm.String", f"{field}.{key}")
            loc[key] = item or ""
        elif key == "locationType":
            if item not in _LOCATION_TYPES:
                raise _convert_error(item, "microsoft.graph.locationType", f"{field}.{key}")
            loc[key] = item
        elif key in ("address", "coordinates"):
            loc[key] = _flat(item, f"{field}.{key}", numeric=key == "coordinates")
        elif key != "uniqueIdType":
            raise _read_error(f"The property '{key}' does not exist on type 'location' ({field}).")
    if loc["displayName"] and loc["uniqueIdType"] == "unknown":
        loc["uniqueId"] = loc.get("uniqueId") or loc["displayName"]
        loc["uniqueIdType"] = "private"
    return loc


_ADDRESS = ("street", "city", "state", "countryOrRegion", "postalCode")
_COORDS = ("latitude", "longitude", "accuracy", "altitude", "altitudeAccuracy")


def _flat(value: Any, field: str, *, numeric: bool) -> dict[str, Any]:
    if value is None:
        return {}
    allowed = _COORDS if numeric else _ADDRESS
    if not isinstance(value, dict):
        raise _convert_error(value, "object", field)
    for key, item in value.items():
        if key not in allowed:
            raise _read_error(f"The property '{key}' does not exist on {field}.")
        ok = (
            isinstance(item, (int, float)) and not isinstance(item, bool)
            if numeric
            else (isinstance(item, str))
        )
        if item is not None and not ok:
            raise _convert_error(item, "Edm.Double" if numeric else "Edm.String", f"{field}.{key}")
    return {k: v for k, v in value.items() if v is not None}
