"""Change and lifecycle notifications delivered to a local HTTPS endpoint, faults included."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from simworld import Receiver, World

from graphsim import schema

pytestmark = pytest.mark.integration


IMMUTABLE = 'IdType="ImmutableId"'


def subscribe(
    world: World, receiver: Receiver, user_id: str = "", *, prefer: str = IMMUTABLE, **extra: Any
) -> dict[str, Any]:
    """A subscription, made with immutable ids unless `prefer` says otherwise ("" = REST ids)."""
    now = dt.datetime.fromisoformat(world.sim.control.now().replace("0Z", "+00:00"))
    graph = world.graph(Prefer=prefer) if prefer else world.graph()
    response = graph.post(
        "subscriptions",
        json={
            "changeType": "created,updated,deleted",
            "notificationUrl": receiver.url,
            "resource": f"users/{user_id or world.user_id}/events",
            "expirationDateTime": (now + dt.timedelta(days=2)).isoformat(),
            "clientState": "cs-123",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_event(world: World, subject: str, upn: str = "") -> dict[str, Any]:
    return world.sim.control.create_event(
        upn or world.upn,
        {
            "subject": subject,
            "start": {"dateTime": "2027-02-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-02-01T09:30:00", "timeZone": "UTC"},
        },
    )


def counter(world: World, name: str) -> int:
    return int(world.sim.control.counters()["notifications"].get(name, 0))


def wait_counter(world: World, name: str, at_least: int = 1) -> int:
    return world.sim.control.wait_for(
        lambda: counter(world, name) >= at_least and counter(world, name), what=name
    )


def test_change_notification_shape(world: World, receiver: Receiver) -> None:
    """A created event notifies: subscriptionId, clientState, tenantId, resource, resourceData."""
    sub = subscribe(world, receiver)
    created = make_event(world, "hello")
    (item,) = receiver.wait_items(1)
    post = receiver.posts[0]["body"]
    assert schema.validate("changeNotificationCollection", post) == []
    assert item["subscriptionId"] == sub["id"]
    assert item["clientState"] == "cs-123"
    assert item["tenantId"] == world.tenant_id
    assert item["changeType"] == "created"
    assert item["resource"] == f"Users/{world.user_id}/Events/{created['id']}"
    assert item["resourceData"] == {
        "@odata.type": "#Microsoft.Graph.Event",
        "@odata.id": item["resource"],
        "@odata.etag": created["@odata.etag"],
        "id": created["id"],
    }


def test_update_and_delete_notify(world: World, receiver: Receiver) -> None:
    """Updates and deletions notify with changeType updated and deleted."""
    subscribe(world, receiver)
    created = make_event(world, "x")
    world.sim.control.update_event(world.upn, created["id"], {"subject": "y"})
    world.sim.control.delete_event(world.upn, created["id"])
    items = receiver.wait_items(3)
    assert sorted(i["changeType"] for i in items) == ["created", "deleted", "updated"]


def test_one_post_carries_items_of_several_subscriptions(world: World, receiver: Receiver) -> None:
    """Notifications for two mailboxes' subscriptions to one URL arrive batched in one POST."""
    world.sim.control.knobs(delivery_batch_window_ms=300)
    users = list(world.users.items())
    subs = {subscribe(world, receiver, uid)["id"] for _, uid in users}
    for upn, _ in users:
        make_event(world, "batched", upn)
    receiver.wait_items(2)
    assert {i["subscriptionId"] for i in receiver.posts[0]["body"]["value"]} == subs


def test_duplicates_knob(world: World, receiver: Receiver) -> None:
    """duplicate_rate=1 delivers every change twice (at-least-once)."""
    world.sim.control.knobs(duplicate_rate=1.0)
    subscribe(world, receiver)
    created = make_event(world, "dup")
    items = receiver.wait_items(2)
    assert [i["resourceData"]["id"] for i in items] == [created["id"], created["id"]]


def test_reorder_knob(world: World, receiver: Receiver) -> None:
    """reorder shuffles a burst: the items do not arrive in the order of the changes."""
    world.sim.control.knobs(reorder=True, delivery_batch_window_ms=300)
    subscribe(world, receiver)
    ids = world.sim.control.bulk_events(world.upn, 12, "2027-03-01T08:00:00Z")
    items = receiver.wait_items(12)
    assert sorted(i["resourceData"]["id"] for i in items) == sorted(ids)
    assert [i["resourceData"]["id"] for i in items] != ids


def test_delay_knob(world: World, receiver: Receiver) -> None:
    """delivery_delay_ms holds each notification back at least that long."""
    world.sim.control.knobs(delivery_delay_ms=400)
    subscribe(world, receiver)
    started = time.monotonic()
    make_event(world, "late")
    receiver.wait_items(1)
    assert receiver.posts[0]["at"] - started >= 0.4


def test_silent_drop_knob(world: World, receiver: Receiver) -> None:
    """drop_rate=1 loses notifications silently: nothing arrives, no missed lifecycle event."""
    world.sim.control.knobs(drop_rate=1.0)
    subscribe(world, receiver, lifecycleNotificationUrl=receiver.url)
    make_event(world, "lost")
    wait_counter(world, "items_dropped_silently")
    assert world.sim.control.deliveries()["idle"]
    assert receiver.posts == []


def test_5xx_is_retried_with_backoff(world: World, receiver: Receiver) -> None:
    """A 503 answer is retried (backoff compressed by delivery_time_scale) until it succeeds."""
    world.sim.control.knobs(delivery_time_scale=100)
    receiver.fail_first = 2
    subscribe(world, receiver)
    created = make_event(world, "retry")
    receiver.wait_items(3)
    assert {i["resourceData"]["id"] for i in receiver.items()} == {created["id"]}
    assert counter(world, "retries") >= 2
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.posts, receiver.posts[1:], strict=False)]
    assert gaps[1] > gaps[0]  # exponential: 0.1 s then 0.2 s (10 s, 20 s compressed)


def test_retries_give_up_after_the_horizon_and_send_missed(
    world: World, receiver: Receiver
) -> None:
    """Retries past the horizon lose the items and send a `missed` lifecycle event."""
    world.sim.control.knobs(delivery_time_scale=100, retry_horizon_s=60)
    subscribe(
        world, receiver, lifecycleNotificationUrl=receiver.url.replace("/notify", "/lifecycle")
    )
    receiver.notify_status = 500
    make_event(world, "doomed")
    wait_counter(world, "items_expired_retries")
    receiver.notify_status = 202
    (missed,) = receiver.wait_items(1, kind="lifecycle")
    assert missed["lifecycleEvent"] == "missed"


def test_4xx_is_not_retried(world: World, receiver: Receiver) -> None:
    """A 4xx answer is final: the notification is lost, no retry."""
    receiver.notify_status = 400
    subscribe(world, receiver)
    make_event(world, "rejected")
    wait_counter(world, "items_rejected_4xx")
    assert counter(world, "retries") == 0


def test_slow_endpoint_gets_notifications_delayed(world: World, receiver: Receiver) -> None:
    """Answers slower than the slow threshold mark the endpoint slow; new items wait 10 minutes."""
    world.sim.control.knobs(slow_threshold_s=0.1)
    receiver.notify_delay_s = 0.3
    subscribe(world, receiver)
    make_event(world, "first")
    receiver.wait_items(1)
    world.sim.control.wait_for(
        lambda: world.sim.control.deliveries()["endpoints"].get(receiver.url) == "slow", what="slow"
    )
    make_event(world, "second")
    wait_counter(world, "items_delayed_slow_endpoint")
    assert len(receiver.items()) == 1
    world.sim.control.advance(601)  # the 10-minute delay passes on the virtual clock
    receiver.wait_items(2)


def test_drop_endpoint_loses_notifications_and_sends_missed(
    world: World, receiver: Receiver
) -> None:
    """Answers over the drop threshold mark the endpoint 'drop': new items are discarded."""
    world.sim.control.knobs(drop_threshold_s=0.2, request_timeout_s=0.25)
    receiver.notify_delay_s = 0.5
    lifecycle_url = receiver.url.replace("/notify", "/lifecycle")
    subscribe(world, receiver, lifecycleNotificationUrl=lifecycle_url)
    make_event(world, "times out")
    world.sim.control.wait_for(
        lambda: world.sim.control.deliveries()["endpoints"].get(receiver.url) == "drop", what="drop"
    )
    receiver.notify_delay_s = 0.0
    make_event(world, "dropped")
    wait_counter(world, "items_dropped_endpoint")
    missed = receiver.wait_items(1, kind="lifecycle")
    assert missed[0]["lifecycleEvent"] == "missed"


def test_reauthorization_required_pauses_until_reauthorize(
    world: World, receiver: Receiver
) -> None:
    """reauthorizationRequired is delivered; changes meanwhile are lost; reauthorize resumes."""
    lifecycle_url = receiver.url.replace("/notify", "/lifecycle")
    sub = subscribe(world, receiver, lifecycleNotificationUrl=lifecycle_url)
    assert world.sim.control.lifecycle(sub["id"], "reauthorizationRequired")
    (event,) = receiver.wait_items(1, kind="lifecycle")
    assert schema.validate("changeNotificationCollection", {"value": [event]}) == []
    assert event["lifecycleEvent"] == "reauthorizationRequired"
    assert event["subscriptionId"] == sub["id"]
    assert event["tenantId"] == world.tenant_id
    assert event["clientState"] == "cs-123"
    make_event(world, "lost while paused")
    wait_counter(world, "items_lost_reauthorization_pending")
    assert world.graph().post(f"subscriptions/{sub['id']}/reauthorize").status_code == 204
    make_event(world, "after")
    (item,) = receiver.wait_items(1)
    assert item["changeType"] == "created"


def test_subscription_removed_really_removes(world: World, receiver: Receiver) -> None:
    """subscriptionRemoved is delivered and the subscription is gone (404)."""
    sub = subscribe(world, receiver, lifecycleNotificationUrl=receiver.url)
    world.sim.control.lifecycle(sub["id"], "subscriptionRemoved")
    (event,) = receiver.wait_items(1, kind="lifecycle")
    assert event["lifecycleEvent"] == "subscriptionRemoved"
    assert world.graph().get(f"subscriptions/{sub['id']}").status_code == 404
    make_event(world, "nobody listens")
    assert receiver.items("change") == []


def test_missed_on_command(world: World, receiver: Receiver) -> None:
    """A `missed` lifecycle notification can be fired on command."""
    sub = subscribe(world, receiver, lifecycleNotificationUrl=receiver.url)
    world.sim.control.lifecycle(sub["id"], "missed")
    assert receiver.wait_items(1, kind="lifecycle")[0]["lifecycleEvent"] == "missed"


def test_revoked_consent_sends_reauthorization_required(world: World, receiver: Receiver) -> None:
    """Revoking the app's admin consent sends reauthorizationRequired to its subscriptions."""
    sub = subscribe(world, receiver, lifecycleNotificationUrl=receiver.url)
    world.sim.control.revoke_consent(world.tenant_id, world.client_id)
    (event,) = receiver.wait_items(1, kind="lifecycle")
    assert (event["lifecycleEvent"], event["subscriptionId"]) == (
        "reauthorizationRequired",
        sub["id"],
    )
