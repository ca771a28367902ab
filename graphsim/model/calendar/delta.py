"""Server-side sync state for calendarView/delta, one engine per mailbox + app. Pure.

Rule (api/event-delta, delta-query-events): a round is paged with skiptokens until its last
page, which alone carries a deltatoken; a page never has both and may be empty. The
deltatoken holds the round's window and the {id: changeKey} snapshot of what it reported;
resuming reports what was created or changed since (changeKey differs), and
{"id", "@removed": {"reason": "deleted"}} for what was deleted or moved out of the window.
Tokens are opaque random text and embed nothing. An unknown or expired token is 410
SyncStateNotFound. Pages hold DEFAULT_PAGE_SIZE items unless `Prefer: odata.maxpagesize`
asks otherwise (the real default is undocumented; with page_size_jitter pages are anywhere
from 1 to twice the size asked, as users report). replay_rate re-sends unchanged items, as
Graph does. Only the newest max_sync_states deltatokens are kept: older ones are 410.
Ids are immutable ones unless a request says `immutable_ids=False`: then REST ids, in the
snapshot too, so an item moved to another folder since the last round comes back under its new
REST id and its old one is reported removed (outlook-immutable-id).
"""

from __future__ import annotations

import base64
import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.model import Instance, utc
from graphsim.model.calendar.render import canonical, render_event
from graphsim.model.calendar.store import CalendarStore

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000  # larger odata.maxpagesize values are served 1000 at a time
SYNC_STATE_GONE = (
    "The sync state generation is not found; the delta token or skip token has expired or is "
    "not valid. Start a new full sync of the window (calendarView/delta with startDateTime and "
    "endDateTime) and diff it against your copy to find deletions."
)


@dataclass
class DeltaPage:
    items: list[dict[str, Any]]  # rendered events, or {"id": ..., "@removed": {...}}
    skiptoken: str | None  # set when more pages follow (server builds @odata.nextLink)
    deltatoken: str | None  # set on the last page (server builds @odata.deltaLink)


@dataclass
class _Round:
    """One sync round being paged: what to report and the snapshot its deltatoken keeps."""

    window: tuple[datetime, datetime]
    entries: list[Instance | str]  # an instance to render, or the id of a removed one
    snapshot: dict[str, str]
    page_size: int
    time_zone: str | None
    body_type: str
    immutable_ids: bool = True


@dataclass
class _Cursor:
    round: _Round
    offset: int
    created: datetime
    page: DeltaPage | None = None  # the page once served: a retried nextLink gets it again


@dataclass
class _SyncState:
    window: tuple[datetime, datetime]
    snapshot: dict[str, str]
    created: datetime


class DeltaEngine:
    """Server-side sync state for calendarView/delta, one per mailbox+app (tokens are opaque)."""

    def __init__(
        self,
        store: CalendarStore,
        *,
        replay_rate: float = 0.0,
        rng: random.Random | None = None,
        empty_page_rate: float = 0.0,
        page_size_jitter: bool = False,
        max_sync_states: int = 100,
    ) -> None:
        for name, rate in (("replay_rate", replay_rate), ("empty_page_rate", empty_page_rate)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.store = store
        self.replay_rate = replay_rate
        self.empty_page_rate = empty_page_rate
        self.page_size_jitter = page_size_jitter
        self.max_sync_states = max_sync_states
        self._rng = rng or random.Random()
        self._cursors: dict[str, _Cursor] = {}
        self._states: OrderedDict[str, _SyncState] = OrderedDict()

    # -- rounds ---------------------------------------------------------------------------
    def start(
        self,
        start: datetime,
        end: datetime,
        now: datetime,
        *,
        page_size: int | None,
        time_zone: str | None,
        body_type: str,
        immutable_ids: bool = True,
    ) -> DeltaPage:
        """The first page of a full sync of [start, end)."""
        lo, hi = utc(start, "start"), utc(end, "end")
        if hi <= lo:
            raise GraphRequestError(
                400,
                "ErrorInvalidParameter",
                "endDateTime must be after startDateTime in calendarView/delta.",
            )
        self._check_render(time_zone, body_type)
        records = self.store.instance_records(lo, hi)
        entries: list[Instance | str] = list(records)
        if self.replay_rate:
            entries = self._with_replays(entries)
        snapshot = {self._id(r.id, immutable_ids): r.change_key for r in records}
        rnd = _Round(
            (lo, hi), entries, snapshot, _size(page_size), time_zone, body_type, immutable_ids
        )
        return self._serve(_Cursor(rnd, 0, utc(now, "now")), utc(now, "now"))

    def resume(
        self,
        deltatoken: str,
        now: datetime,
        *,
        page_size: int | None,
        time_zone: str | None,
        body_type: str,
        immutable_ids: bool = True,
    ) -> DeltaPage:
        """The first page of what changed since the round that gave `deltatoken`."""
        state = self._states.get(deltatoken)
        if state is None:
            raise GraphRequestError(410, "SyncStateNotFound", SYNC_STATE_GONE)
        self._check_render(time_zone, body_type)
        records = self.store.instance_records(*state.window)
        entries: list[Instance | str] = []
        shown = [(self._id(r.id, immutable_ids), r) for r in records]
        current = {shown_id: r.change_key for shown_id, r in shown}
        for shown_id, rec in shown:
            changed = state.snapshot.get(shown_id) != rec.change_key
            if changed or (self.replay_rate and self._rng.random() < self.replay_rate):
                entries.append(rec)
        entries.extend(gone for gone in state.snapshot if gone not in current)
        rnd = _Round(
            state.window, entries, current, _size(page_size), time_zone, body_type, immutable_ids
        )
        return self._serve(_Cursor(rnd, 0, utc(now, "now")), utc(now, "now"))

    def next_page(self, skiptoken: str, now: datetime) -> DeltaPage:
        """The page a nextLink names; the same page again if that nextLink is retried."""
        cursor = self._cursors.get(skiptoken)
        if cursor is None:
            raise GraphRequestError(410, "SyncStateNotFound", SYNC_STATE_GONE)
        return self._serve(cursor, utc(now, "now"))

    # -- tokens ---------------------------------------------------------------------------
    def expire(self, token: str | None = None) -> int:
        """Expire one token (skip or delta) or, with None, every token. Returns how many."""
        if token is None:
            count = len(self._cursors) + len(self._states)
            self._cursors.clear()
            self._states.clear()
            return count
        found = self._cursors.pop(token, None) is not None
        found = self._states.pop(token, None) is not None or found
        return int(found)

    def expire_older_than(self, cutoff: datetime) -> int:
        """Expire every token minted before `cutoff` (the simulator's virtual clock)."""
        cutoff = utc(cutoff, "cutoff")
        old_cursors = [t for t, c in self._cursors.items() if c.created < cutoff]
        old_states = [t for t, s in self._states.items() if s.created < cutoff]
        for t in old_cursors:
            del self._cursors[t]
        for t in old_states:
            del self._states[t]
        return len(old_cursors) + len(old_states)

    def tokens(self) -> int:
        """How many tokens are alive (for the control API and tests)."""
        return len(self._cursors) + len(self._states)

    # -- paging ---------------------------------------------------------------------------
    def _serve(self, cursor: _Cursor, now: datetime) -> DeltaPage:
        """Serve the cursor's page once; the tokens it mints are dated `now` (their age is
        counted from when they were handed out, so a client paging steadily keeps them alive)."""
        if cursor.page is not None:
            return cursor.page
        rnd = cursor.round
        if self.empty_page_rate and self._rng.random() < self.empty_page_rate:
            size = 0
        elif self.page_size_jitter:
            size = self._rng.randint(1, min(MAX_PAGE_SIZE, 2 * rnd.page_size))
        else:
            size = rnd.page_size
        chunk = rnd.entries[cursor.offset : cursor.offset + size]
        items = [self._render(entry, rnd) for entry in chunk]
        offset = cursor.offset + len(chunk)
        if offset < len(rnd.entries) or (size == 0 and rnd.entries):
            skip = self._token()
            self._cursors[skip] = _Cursor(rnd, offset, now)
            cursor.page = DeltaPage(items, skip, None)
        else:
            delta = self._token()
            self._states[delta] = _SyncState(rnd.window, rnd.snapshot, now)
            while len(self._states) > self.max_sync_states:
                self._states.popitem(last=False)
            cursor.page = DeltaPage(items, None, delta)
        return cursor.page

    def _render(self, entry: Instance | str, rnd: _Round) -> dict[str, Any]:
        if isinstance(entry, str):
            return {"id": entry, "@removed": {"reason": "deleted"}}
        doc = canonical(entry)
        if rnd.time_zone or rnd.body_type != "html":
            doc = render_event(doc, time_zone=rnd.time_zone, body_type=rnd.body_type)
        return self.store.in_form(doc, immutable=rnd.immutable_ids)

    def _id(self, event_id: str, immutable_ids: bool) -> str:
        return event_id if immutable_ids else self.store.rest_id(event_id)

    def _with_replays(self, entries: list[Instance | str]) -> list[Instance | str]:
        """Re-send some items later in the same round (the client must tolerate duplicates)."""
        later: dict[int, list[Instance | str]] = {}
        for i, entry in enumerate(entries):
            if self._rng.random() < self.replay_rate:
                later.setdefault(self._rng.randint(i, len(entries) - 1), []).append(entry)
        out: list[Instance | str] = []
        for i, entry in enumerate(entries):
            out.append(entry)
            out.extend(later.get(i, []))
        return out

    def _token(self) -> str:
        return base64.urlsafe_b64encode(self._rng.randbytes(30)).decode("ascii")

    @staticmethod
    def _check_render(time_zone: str | None, body_type: str) -> None:
        # Fail on the first request, not half-way through the pages.
        render_event({}, time_zone=time_zone, body_type=body_type)


def _size(page_size: int | None) -> int:
    if page_size is None or page_size < 1:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)
