"""The subscription model alone, without a server: built from a directory, a clock callable and
a list as the delivery sink, as `Simulator` wires it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from graphsim.counters import Counters
from graphsim.knobs import Knobs
from graphsim.model.directory import Directory
from graphsim.model.subscriptions import Subscriptions

NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)


def _world() -> tuple[Directory, Subscriptions, list[tuple[str, str, dict[str, Any], str]], str]:
    sent: list[tuple[str, str, dict[str, Any], str]] = []
    directory = Directory(seed=1)
    directory.add_tenant("t1", "contoso.example")
    user = directory.add_user("t1", "adele@contoso.example")
    subs = Subscriptions(
        now=lambda: NOW,
        knobs=Knobs(),
        counters=Counters(),
        send=lambda url, kind, item, sub_id: sent.append((url, kind, item, sub_id)),
    )
    directory.listeners.append(subs.on_change)
    return directory, subs, sent, user.id


def _subscribe(subs: Subscriptions, user_id: str, **extra: Any) -> Any:
    fields: dict[str, Any] = {
        "app_id": "app",
        "tenant_id": "t1",
        "mailbox_id": user_id,
        "resource": f"users/{user_id}/events",
        "change_type": "created",
        "change_types": frozenset({"created"}),
        "notification_url": "https://127.0.0.1:9/hook",
        "lifecycle_url": "https://127.0.0.1:9/life",
        "client_state": "s3cret",
        "expiration": NOW + timedelta(hours=1),
        "latest_tls": "v1_2",
        "creator_id": "app",
    }
    return subs.add(**{**fields, **extra})


def test_notifications_carry_the_id_form_the_subscription_was_made_with() -> None:
    """A subscription made with immutable ids is told the immutable id, one made without it
    the REST id of the moment: after a move, the new REST id, and the immutable one unchanged."""
    directory, subs, sent, user_id = _world()
    both = {"change_type": "created,updated", "change_types": frozenset({"created", "updated"})}
    immutable = _subscribe(subs, user_id, immutable_ids=True, **both)
    _subscribe(subs, user_id, **both)
    store = directory.mailbox_for(user_id).store
    event = store.create(
        {
            "subject": "x",
            "start": {"dateTime": "2026-03-16T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-16T11:00:00", "timeZone": "UTC"},
        },
        NOW,
    )
    rest_before = store.rest_id(event["id"])
    store.move(event["id"], NOW)
    seen = [(sub_id == immutable.id, item["resourceData"]["id"]) for _, _, item, sub_id in sent]
    assert sorted(seen) == sorted(
        [
            (True, event["id"]),
            (True, event["id"]),
            (False, rest_before),
            (False, store.rest_id(event["id"])),
        ]
    )
    assert rest_before != store.rest_id(event["id"])


def test_a_calendar_change_reaches_the_sink_as_a_change_item() -> None:
    """A created event becomes one change item for the subscription's URL, with clientState."""
    directory, subs, sent, user_id = _world()
    sub = _subscribe(subs, user_id, immutable_ids=True)
    event = directory.mailbox_for(user_id).store.create(
        {
            "subject": "x",
            "start": {"dateTime": "2026-03-16T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-16T11:00:00", "timeZone": "UTC"},
        },
        NOW,
    )
    assert [(url, kind, sub_id) for url, kind, _, sub_id in sent] == [
        ("https://127.0.0.1:9/hook", "change", sub.id)
    ]
    item = sent[0][2]
    assert item["resource"] == f"Users/{user_id}/Events/{event['id']}"
    assert (item["changeType"], item["clientState"]) == ("created", "s3cret")
    assert item["subscriptionExpirationDateTime"] == "2026-03-16T10:00:00.0000000Z"


def test_expiry_follows_the_given_clock() -> None:
    """A subscription whose expiry is not after the given now is purged."""
    _, subs, _, user_id = _world()
    _subscribe(subs, user_id, expiration=NOW)
    _subscribe(subs, user_id, expiration=NOW + timedelta(seconds=1), change_types=frozenset())
    assert subs.purge_expired() == 1
    assert subs.count_for_mailbox(user_id) == 1


def test_missed_goes_to_the_lifecycle_url() -> None:
    """`missed` (what the delivery reports for lost items) sends a lifecycle item."""
    _, subs, sent, user_id = _world()
    sub = _subscribe(subs, user_id)
    subs.missed(sub.id)
    assert [(url, kind, item["lifecycleEvent"]) for url, kind, item, _ in sent] == [
        ("https://127.0.0.1:9/life", "lifecycle", "missed")
    ]
