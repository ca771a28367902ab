"""EWS calendar items in Graph's shapes, the cursor's prefix, and what an incremental round
changes (shared/core/ews.py), table-driven with no fixtures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared.core.events import normalize_event
from shared.core.ews import (
    Attendee,
    EwsItem,
    RoundPlan,
    SyncChange,
    ews_user_id,
    html_to_text,
    instance_id,
    pages,
    parse_sync_link,
    plan_changes,
    plan_full,
    sync_link,
    to_graph_event,
)
from shared.core.model import DeltaItem, MailboxOptions
from shared.errors import InputError

T9 = datetime(2026, 12, 2, 9, tzinfo=UTC)
T10 = datetime(2026, 12, 2, 10, tzinfo=UTC)


def item(**over: Any) -> EwsItem:
    base: dict[str, Any] = {
        "item_id": "AAMkSingle=",
        "change_key": "CK1",
        "kind": "Single",
        "start": T9,
        "end": T10,
        "uid": "UID-1",
        "subject": "Review",
        "start_zone": "W. Europe Standard Time",
        "end_zone": "W. Europe Standard Time",
    }
    base.update(over)
    return EwsItem(**base)


def occurrence(index: int, master_uid: str = "UID-S", **over: Any) -> EwsItem:
    start = datetime(2026, 12, index, 8, tzinfo=UTC)
    return item(
        item_id=f"occ{index}",
        kind=over.pop("kind", "Occurrence"),
        uid=master_uid,
        start=start,
        end=start.replace(hour=9),
        original_start=start,
        **over,
    )


@pytest.mark.parametrize(
    ("field", "ews", "graph"),
    [
        ("free_busy", "Free", ("showAs", "free")),
        ("free_busy", "OOF", ("showAs", "oof")),
        ("free_busy", "WorkingElsewhere", ("showAs", "workingElsewhere")),
        ("free_busy", "NoData", ("showAs", "unknown")),
        ("sensitivity", "Private", ("sensitivity", "private")),
        ("sensitivity", "Confidential", ("sensitivity", "confidential")),
        ("importance", "High", ("importance", "high")),
        (
            "my_response",
            "Accept",
            ("responseStatus", {"response": "accepted", "time": "0001-01-01T00:00:00Z"}),
        ),
        ("my_response", "Organizer", ("isOrganizer", True)),
        ("kind", "Single", ("type", "singleInstance")),
        ("location", "Room 1", ("locations", [{"displayName": "Room 1"}])),
        ("location", "", ("locations", [])),
        ("categories", ("Blue",), ("categories", ["Blue"])),
    ],
)
def test_ews_words_become_graphs(field: str, ews: Any, graph: tuple[str, Any]) -> None:
    """Each EWS value is written in Graph's word for it."""
    event = to_graph_event(item(**{field: ews}), master_id=None, body_type="html")
    assert event[graph[0]] == graph[1]


def test_timed_event_is_in_utc_with_its_zone_in_iana() -> None:
    """A timed item's start and end are UTC wall times; its Windows zone id is an IANA name."""
    event = to_graph_event(item(), master_id=None, body_type="html")
    assert event["start"] == {"dateTime": "2026-12-02T09:00:00.0000000", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2026-12-02T10:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("zone", "start", "end", "dates"),
    [
        # EWS writes all-day items as the UTC instants of the zone's midnights.
        (
            "Tokyo Standard Time",
            datetime(2026, 12, 1, 15, tzinfo=UTC),
            datetime(2026, 12, 2, 15, tzinfo=UTC),
            ("2026-12-02", "2026-12-03"),
        ),
        (
            "Pacific Standard Time",
            datetime(2026, 12, 2, 8, tzinfo=UTC),
            datetime(2026, 12, 4, 8, tzinfo=UTC),
            ("2026-12-02", "2026-12-04"),
        ),
        # exchangelib gives dates (end exclusive once the adapter adds its day back).
        (
            "W. Europe Standard Time",
            date(2026, 12, 2),
            date(2026, 12, 3),
            ("2026-12-02", "2026-12-03"),
        ),
    ],
)
def test_all_day_events_keep_their_dates_as_written(
    zone: str, start: Any, end: Any, dates: tuple[str, str]
) -> None:
    """An all-day item is local midnights in its own zone, so the mirror's dates never shift."""
    ev = item(is_all_day=True, start=start, end=end, start_zone=zone, end_zone=zone)
    props = normalize_event(to_graph_event(ev, master_id=None, body_type="html"), MailboxOptions())
    assert (props.properties["all_day_start_date"], props.properties["all_day_end_date"]) == dates


def test_occurrence_ids_come_from_the_master_and_the_original_start() -> None:
    """An occurrence and the exception it becomes share one id: master id ~ original start."""
    occ = occurrence(8)
    exc = occurrence(8, kind="Exception", subject="Moved")
    assert instance_id(occ, "MASTER") == instance_id(exc, "MASTER") == "MASTER~20261208T080000Z"
    event = to_graph_event(exc, master_id="MASTER", body_type="html")
    assert event["type"] == "exception"
    assert event["seriesMasterId"] == "MASTER"
    assert event["originalStart"] == "2026-12-08T08:00:00Z"


@pytest.mark.parametrize(
    ("body", "is_html", "want", "content_type", "content"),
    [
        (
            "<p>Hello <b>you</b></p><p>x &amp; y</p>",
            True,
            "html",
            "html",
            "<p>Hello <b>you</b></p><p>x &amp; y</p>",
        ),
        ("<p>Hello <b>you</b></p><p>x &amp; y</p>", True, "text", "text", "Hello you\nx & y"),
        ("a < b\nc", False, "html", "html", "<html><body>a &lt; b<br>c</body></html>"),
        ("a < b\nc", False, "text", "text", "a < b\nc"),
    ],
)
def test_bodies_follow_the_mailbox_body_type(
    body: str, is_html: bool, want: Any, content_type: str, content: str
) -> None:
    """The body comes as the mailbox asks (html or text), converted when EWS stored the other."""
    event = to_graph_event(item(body=body, body_is_html=is_html), master_id=None, body_type=want)
    assert event["body"] == {"contentType": content_type, "content": content}


def test_html_to_text_drops_scripts_and_folds_blanks() -> None:
    """Script and style contents never reach the text; runs of blanks fold to one."""
    assert html_to_text("<style>p{}</style><div>a   b</div><script>x()</script>c") == "a b\nc"


def test_attendees_are_graph_attendees() -> None:
    """Required, optional and resource attendees keep their kind and response."""
    ev = item(
        attendees=(
            Attendee("Ada", "ada@x", "Accept"),
            Attendee("Bo", "bo@x", "Decline", "optional"),
        )
    )
    event = to_graph_event(ev, master_id=None, body_type="html")
    assert [(a["type"], a["status"]["response"]) for a in event["attendees"]] == [
        ("required", "accepted"),
        ("optional", "declined"),
    ]


@pytest.mark.parametrize(
    ("link", "state"),
    [
        ("ews-sync:H4sIAAA=", "H4sIAAA="),
        ("ews-sync:", None),
        ("", None),
        ("https://graph.microsoft.com/v1.0/users/x/calendarView/delta?$deltatoken=a", None),
    ],
)
def test_cursor_prefix_keeps_the_providers_apart(link: str, state: str | None) -> None:
    """Only an `ews-sync:` cursor is a sync state; a Graph delta link never is."""
    assert parse_sync_link(link) == state
    if state:
        assert sync_link(state) == link


def test_full_plan_lists_instances_and_skips_unknown_series() -> None:
    """A full round lists singles and the instances of known series; an occurrence of a series
    the sync walk did not see waits for the next round."""
    plan = plan_full(
        [item(), occurrence(1), occurrence(2, master_uid="UID-NEW")],
        {"UID-S": "MASTER"},
        body_type="html",
    )
    assert [i.event_id for i in plan.items] == ["AAMkSingle=", "MASTER~20261201T080000Z"]
    assert plan.skipped == 1


def test_incremental_plan_removes_what_the_view_no_longer_shows() -> None:
    """Changed singles and the series of changed masters come from the view; instances the
    mirror holds of changed or deleted items and the view lacks are removed; others stay."""
    changes = [
        SyncChange("update", "MASTER", "UID-S", "RecurringMaster"),
        SyncChange("update", "MOVED", "UID-M", "Single"),
        SyncChange("delete", "GONE"),
    ]
    view = [occurrence(1), item(item_id="UNTOUCHED", uid="UID-U")]
    mirror = {
        "MASTER~20261201T080000Z",
        "MASTER~20261202T080000Z",  # cancelled since
        "MOVED",  # moved out of the window
        "GONE",
        "GONE~20261203T080000Z",
        "UNTOUCHED",
    }
    plan = plan_changes(changes, view, mirror, body_type="html")
    assert [(i.event_id, i.removed) for i in plan.items] == [
        ("MASTER~20261201T080000Z", None),
        ("GONE", "deleted"),
        ("GONE~20261203T080000Z", "deleted"),
        ("MASTER~20261202T080000Z", "deleted"),
        ("MOVED", "deleted"),
    ]


def test_a_single_turned_series_loses_its_single_row() -> None:
    """A single made recurring (same item id) is replaced by its occurrences."""
    changes = [SyncChange("update", "X", "UID-S", "RecurringMaster")]
    plan = plan_changes(changes, [occurrence(1)], {"X"}, body_type="html")
    assert [(i.event_id, i.removed) for i in plan.items] == [
        ("X~20261201T080000Z", None),
        ("X", "deleted"),
    ]


def test_pages_end_with_the_sync_state_and_are_never_empty() -> None:
    """Items come in pages of the given size; only the last carries the cursor; a quiet round
    is one empty page with it."""
    items = tuple(DeltaItem(str(n), removed="deleted") for n in range(5))
    got = list(pages(RoundPlan(items), "S", size=2))
    assert [len(p.items) for p in got] == [2, 2, 1]
    assert [p.delta_link for p in got] == [None, None, "ews-sync:S"]
    assert all(p.next_link for p in got[:-1])
    (quiet,) = pages(RoundPlan(()), "S")
    assert quiet.items == ()
    assert quiet.delta_link == "ews-sync:S"


@pytest.mark.parametrize("bad", ["ann", "@contoso.com", "ann@", "a@b@c"])
def test_ews_mailboxes_are_enrolled_by_smtp_address(bad: str) -> None:
    """An EWS mailbox's id comes from its SMTP address (case-insensitive); others are refused."""
    assert ews_user_id("Ann@Contoso.com") == ews_user_id("ann@contoso.com")
    with pytest.raises(InputError, match="SMTP address"):
        ews_user_id(bad)
