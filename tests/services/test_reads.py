"""The read API's services over real Azurite and no Graph at all: "now" of many mailboxes costs
one mailbox-list query per tenant and one events query per enrolled mailbox; the agenda one
point read and one query; all-day events land on the mailbox's local day."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.storage import StorageClients
from shared.adapters.tables import TableState
from shared.compose import Services
from shared.core.events import normalize_event
from shared.core.model import MailboxKey, MailboxOptions
from shared.core.state import MailboxRecord
from shared.services import reads
from shared.settings import Settings, StorageSettings

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # Dec 2 05:00 in Tokyo, Dec 1 12:00 in LA


class CountingState(TableState):
    """The real Table state, counting the reads the read API makes."""

    def __init__(self, clients: StorageClients) -> None:
        super().__init__(clients)
        self.calls: Counter[str] = Counter()

    def list_events(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls["list_events"] += 1
        return super().list_events(*args, **kwargs)

    def list_mailboxes(self, tenant_id: str | None = None) -> list[MailboxRecord]:
        self.calls["list_mailboxes"] += 1
        return super().list_mailboxes(tenant_id)

    def get_mailbox(self, key: MailboxKey) -> MailboxRecord:
        self.calls["get_mailbox"] += 1
        return super().get_mailbox(key)


class NoGraph:
    """Any use of Graph fails the test: reads answer from the mirror only."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the read API used Graph ({name})")


def _utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@pytest.fixture
def world(azurite: str) -> tuple[Services, CountingState, str]:
    tenant = str(uuid.uuid4())
    settings = Settings.from_env(
        {"TENANT_IDS": tenant, "CLIENT_ID": str(uuid.uuid4()), "AzureWebJobsStorage": azurite}
    )
    state = CountingState(StorageClients(StorageSettings(connection_string=azurite)))
    state.ensure()
    nothing: Any = NoGraph()
    svc = Services(settings, state, nothing, nothing, nothing, nothing, clock=lambda: NOW)
    for user, zone in (("tokyo", "Asia/Tokyo"), ("la", "America/Los_Angeles"), ("utc", "UTC")):
        options = MailboxOptions(time_zone=zone)
        key = MailboxKey(tenant, user)
        state.put_mailbox(MailboxRecord(key, f"{user}@contoso.example", options, True))
        events = [
            {
                "id": f"{user}-holiday",
                "subject": "Holiday",
                "isAllDay": True,
                "showAs": "oof",
                "start": {"dateTime": "2026-12-01T00:00:00", "timeZone": zone},
                "end": {"dateTime": "2026-12-02T00:00:00", "timeZone": zone},
            },
            {
                "id": f"{user}-call",
                "subject": "Call",
                "showAs": "busy",
                "start": _utc(NOW - timedelta(minutes=10)),
                "end": _utc(NOW + timedelta(minutes=20)),
            },
        ]
        state.apply_events(key, [normalize_event(e, options) for e in events], [])
    state.calls.clear()
    return svc, state, tenant


def test_now_costs_one_query_per_mailbox_and_one_list_per_tenant(
    world: tuple[Services, CountingState, str],
) -> None:
    """Three enrolled (one asked twice), two unknown (one of a foreign tenant): 1 list and 3
    event queries, no Graph; the all-day oof of Dec 1 covers now in Los Angeles and UTC, not
    in Tokyo."""
    svc, state, tenant = world
    asked = [{"tenantId": tenant, "user": u} for u in ("tokyo", "la@contoso.example", "utc")]
    asked += [{"tenantId": tenant, "user": "ghost"}, {"tenantId": str(uuid.uuid4()), "user": "x"}]
    answer = reads.now(svc, {"mailboxes": [*asked, asked[0]]})["value"]
    assert state.calls == Counter(list_mailboxes=1, list_events=3)  # the repeat: no query
    assert answer.pop() == answer[0]
    assert [(e["status"], (e["current"] or {}).get("id")) for e in answer] == [
        ("busy", "tokyo-call"),
        ("oof", "la-holiday"),  # oof beats busy
        ("oof", "utc-holiday"),  # 20:00 UTC is still Dec 1 there
        ("notEnrolled", None),
        ("notEnrolled", None),
    ]


def test_agenda_is_one_point_read_and_one_query(
    world: tuple[Services, CountingState, str],
) -> None:
    """The agenda of a mailbox by id: its record (a point read) and one bounded events query."""
    svc, state, tenant = world
    body = reads.agenda(svc, tenant, "tokyo", "2026-12-01", "2026-12-02")
    assert state.calls == Counter(get_mailbox=1, list_events=1)
    assert [(e["id"], e["start"]) for e in body["value"]] == [
        ("tokyo-holiday", "2026-11-30T15:00:00Z")
    ]
