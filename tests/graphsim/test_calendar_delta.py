"""DeltaEngine: paging, resume with creates/updates/deletes, moves across the window edge,
token lifetimes and 410 SyncStateNotFound, replays, and speed over 10,000 events."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.delta import DEFAULT_PAGE_SIZE, DeltaEngine, DeltaPage
from graphsim.model.calendar.store import CalendarStore
from graphsim.schema import validate

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LO, HI = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def _at(day: int, hour: int = 9) -> dict[str, Any]:
    start = datetime(2026, 1, 1) + timedelta(days=day, hours=hour)
    return {
        "subject": f"day {day}",
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
    }


def _store(count: int, seed: int = 1) -> CalendarStore:
    store = CalendarStore("u@contoso.com", seed=seed)
    for i in range(count):
        store.create(_at(i % 365, 8 + i % 10), NOW)
    return store


@functools.cache
def _big_store() -> CalendarStore:
    """10,000 events over a year, shared by the read-only tests (built once: ~0.6 s)."""
    return _store(10_000)


def _drain(engine: DeltaEngine, first: DeltaPage) -> tuple[list[dict[str, Any]], list[DeltaPage]]:
    pages = [first]
    while pages[-1].skiptoken:
        pages.append(engine.next_page(pages[-1].skiptoken, NOW))
    for page in pages:
        assert (page.skiptoken is None) != (page.deltatoken is None), "exactly one token a page"
    return [item for page in pages for item in page.items], pages


def _start(engine: DeltaEngine, page_size: int | None = None, **kw: Any) -> DeltaPage:
    return engine.start(
        LO,
        HI,
        NOW,
        page_size=page_size,
        time_zone=kw.get("time_zone"),
        body_type=kw.get("body_type", "html"),
    )


def _resume(engine: DeltaEngine, token: str | None, page_size: int | None = None) -> DeltaPage:
    assert token is not None
    return engine.resume(token, NOW, page_size=page_size, time_zone=None, body_type="html")


@pytest.mark.parametrize(
    ("page_size", "pages"),
    [(None, 10_000 // DEFAULT_PAGE_SIZE), (1000, 10), (999, 11), (5000, 10), (20_000, 10)],
)
def test_initial_sync_of_10000_events_pages_completely(page_size: int | None, pages: int) -> None:
    """10,000 events page out exactly once each, never over the cap, last page has the token."""
    engine = DeltaEngine(_big_store(), rng=random.Random(1))
    items, got = _drain(engine, _start(engine, page_size))
    assert len(got) == pages
    assert len(items) == len({i["id"] for i in items}) == 10_000
    assert got[-1].deltatoken is not None
    assert all(len(p.items) <= min(page_size or DEFAULT_PAGE_SIZE, 1000) for p in got)


def test_resume_reports_creates_updates_deletes_and_moves() -> None:
    """Resume sends new, changed and moved-in items; deleted and moved-out ones as @removed."""
    store = _store(20)
    engine = DeltaEngine(store, rng=random.Random(1))
    first, first_pages = _drain(engine, _start(engine, 7))
    by_subject = {d["subject"]: d["id"] for d in first}
    outside = store.create(_at(400), NOW)  # starts in 2027: outside the window
    created = store.create(_at(50), NOW)
    store.update(by_subject["day 1"], {"subject": "renamed"}, NOW)
    store.delete(by_subject["day 2"], NOW)
    store.update(by_subject["day 3"], _at(500), NOW)  # moved out of the window
    store.update(outside["id"], _at(60), NOW)  # moved into the window
    _drain(engine, _start(engine))  # a later full round does not disturb the first token
    items, _ = _drain(engine, _resume(engine, first_pages[-1].deltatoken))
    changed = {i["id"]: i for i in items if "@removed" not in i}
    removed = {i["id"]: i["@removed"] for i in items if "@removed" in i}
    assert set(changed) == {created["id"], by_subject["day 1"], outside["id"]}
    assert changed[by_subject["day 1"]]["subject"] == "renamed"
    assert removed == {
        by_subject["day 2"]: {"reason": "deleted"},
        by_subject["day 3"]: {"reason": "deleted"},
    }


def test_resume_with_nothing_changed_is_one_empty_page_with_a_deltatoken() -> None:
    """No changes: a single page, empty, carrying a new deltatoken."""
    store = _store(5)
    engine = DeltaEngine(store, rng=random.Random(1))
    _, pages = _drain(engine, _start(engine))
    page = _resume(engine, pages[-1].deltatoken)
    assert page.items == []
    assert page.skiptoken is None
    assert page.deltatoken not in (None, pages[-1].deltatoken)


def test_chained_resumes_see_each_change_once() -> None:
    """Following each round's deltatoken, every change is reported in exactly one round."""
    store = _store(30)
    engine = DeltaEngine(store, rng=random.Random(2))
    items, pages = _drain(engine, _start(engine, 4))
    token = pages[-1].deltatoken
    ids = [i["id"] for i in items]
    for step in range(5):
        store.update(ids[step], {"subject": f"edit {step}"}, NOW)
        got, pages = _drain(engine, _resume(engine, token, 3))
        assert [(g["id"], g["subject"]) for g in got] == [(ids[step], f"edit {step}")]
        token = pages[-1].deltatoken


def test_occurrences_appear_and_a_cancelled_one_is_removed() -> None:
    """A series shows as occurrences; cancelling one reports it @removed on resume."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(
        {
            **_at(3),
            "recurrence": {
                "pattern": {"type": "weekly", "daysOfWeek": ["monday"]},
                "range": {"type": "numbered", "startDate": "2026-01-04", "numberOfOccurrences": 4},
            },
        },
        NOW,
    )
    engine = DeltaEngine(store, rng=random.Random(1))
    items, pages = _drain(engine, _start(engine))
    assert [i["type"] for i in items] == ["occurrence"] * 4
    store.delete(items[1]["id"], NOW)
    got, _ = _drain(engine, _resume(engine, pages[-1].deltatoken))
    removed = [g["id"] for g in got if "@removed" in g]
    changed = [g["id"] for g in got if "@removed" not in g]
    assert removed == [items[1]["id"]]
    # The master changed, so the other occurrences carry a new changeKey and come again.
    assert sorted(changed) == sorted(i["id"] for i in items if i["id"] != items[1]["id"])


def test_unknown_and_expired_tokens_are_410_sync_state_not_found() -> None:
    """Unknown skip/delta tokens, expired ones, and tokens older than a cutoff are 410."""
    store = _store(25)
    engine = DeltaEngine(store, rng=random.Random(1))
    first = _start(engine, 10)
    with pytest.raises(GraphRequestError) as skip_err:
        engine.next_page("bogus", NOW)
    with pytest.raises(GraphRequestError) as delta_err:
        _resume(engine, "bogus")
    for err in (skip_err, delta_err):
        assert (err.value.status, err.value.code) == (410, "SyncStateNotFound")
        assert err.value.message.startswith("The sync state generation is not found;")
    assert first.skiptoken is not None
    assert engine.expire(first.skiptoken) == 1
    with pytest.raises(GraphRequestError):
        engine.next_page(first.skiptoken, NOW)
    _, pages = _drain(engine, _start(engine, 10))
    alive = engine.tokens()
    assert engine.expire_older_than(NOW) == 0
    assert engine.expire_older_than(NOW + timedelta(seconds=1)) == alive
    assert engine.tokens() == 0
    with pytest.raises(GraphRequestError):
        _resume(engine, pages[-1].deltatoken)


def test_token_age_counts_from_when_it_was_handed_out() -> None:
    """expire_older_than drops tokens minted before the cutoff, not later pages of the round."""
    engine = DeltaEngine(_store(25), rng=random.Random(1))
    first = _start(engine, 10)
    assert first.skiptoken is not None
    later = NOW + timedelta(hours=1)
    second = engine.next_page(first.skiptoken, later)
    assert engine.expire_older_than(NOW + timedelta(minutes=30)) == 1  # first.skiptoken
    assert second.skiptoken is not None
    last = engine.next_page(second.skiptoken, later)
    assert last.deltatoken is not None
    with pytest.raises(GraphRequestError):
        engine.next_page(first.skiptoken, later)


def test_expire_all_tokens() -> None:
    """expire() with no token drops every token and says how many."""
    engine = DeltaEngine(_store(25), rng=random.Random(1))
    _drain(engine, _start(engine, 10))
    alive = engine.tokens()
    assert alive >= 3
    assert engine.expire() == alive
    assert engine.tokens() == 0


def test_retried_next_link_returns_the_same_page() -> None:
    """Fetching the same skiptoken twice gives the same page (a client may retry)."""
    engine = DeltaEngine(_store(25), rng=random.Random(1))
    first = _start(engine, 10)
    assert first.skiptoken is not None
    once = engine.next_page(first.skiptoken, NOW)
    twice = engine.next_page(first.skiptoken, NOW)
    assert once == twice


def test_old_sync_states_are_evicted_beyond_the_cap() -> None:
    """Only the newest max_sync_states deltatokens live; older ones are 410."""
    engine = DeltaEngine(_store(3), rng=random.Random(1), max_sync_states=2)
    tokens = [_drain(engine, _start(engine))[1][-1].deltatoken for _ in range(3)]
    with pytest.raises(GraphRequestError):
        _resume(engine, tokens[0])
    assert _resume(engine, tokens[2]).deltatoken


def test_replays_resend_unchanged_items_and_duplicates_within_a_round() -> None:
    """With replay_rate, unchanged items come again on resume and some twice in one round."""
    store = _store(200)
    engine = DeltaEngine(store, rng=random.Random(5), replay_rate=0.3)
    items, pages = _drain(engine, _start(engine, 50))
    assert len({i["id"] for i in items}) == 200
    assert len(items) > 200
    again, _ = _drain(engine, _resume(engine, pages[-1].deltatoken, 50))
    assert 20 < len(again) < 120
    assert all("@removed" not in i for i in again)


def test_jitter_and_empty_pages_still_deliver_everything() -> None:
    """Pages of varying size, some empty, still deliver every item exactly once."""
    store = _store(300)
    engine = DeltaEngine(store, rng=random.Random(9), page_size_jitter=True, empty_page_rate=0.2)
    items, pages = _drain(engine, _start(engine, 20))
    assert sorted(i["id"] for i in items) == sorted(store.snapshot(LO, HI))
    sizes = {len(p.items) for p in pages}
    assert 0 in sizes
    assert max(sizes) > 20


def test_pages_honour_prefer_options_and_validate() -> None:
    """Delta items are rendered with the round's time zone and body type and are valid events."""
    store = _store(3)
    engine = DeltaEngine(store, rng=random.Random(1))
    page = _start(engine, time_zone="Tokyo Standard Time", body_type="text")
    assert {i["start"]["timeZone"] for i in page.items} == {"Tokyo Standard Time"}
    assert all(validate("event", i) == [] for i in page.items)
    assert validate("event", {"id": "x", "@removed": {"reason": "deleted"}}) == []


@pytest.mark.parametrize(
    ("kwargs", "status"), [({"time_zone": "Mars/Olympus"}, 400), ({"body_type": "rtf"}, 400)]
)
def test_bad_render_options_fail_on_the_first_request(kwargs: dict[str, Any], status: int) -> None:
    """An unknown Prefer zone or body type fails before any page is served."""
    engine = DeltaEngine(_store(3), rng=random.Random(1))
    with pytest.raises(GraphRequestError) as err:
        _start(engine, **kwargs)
    assert err.value.status == status
    assert engine.tokens() == 0


def test_window_must_not_be_empty() -> None:
    """endDateTime at or before startDateTime is a 400."""
    engine = DeltaEngine(_store(1), rng=random.Random(1))
    with pytest.raises(GraphRequestError) as err:
        engine.start(HI, LO, NOW, page_size=None, time_zone=None, body_type="html")
    assert err.value.status == 400
