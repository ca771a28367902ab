"""/subscriptions over HTTPS: lifetime rules, quotas, conflicts, handshake, renew, reauthorize."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import unquote

import pytest
from simworld import Receiver, World

from graphsim import schema

pytestmark = pytest.mark.integration


def sim_now(world: World) -> dt.datetime:
    return dt.datetime.fromisoformat(world.sim.control.now().replace("0Z", "+00:00"))


def body(world: World, receiver: Receiver, minutes: float = 60, **extra: Any) -> dict[str, Any]:
    expiry = sim_now(world) + dt.timedelta(minutes=minutes)
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.url,
        "resource": f"users/{world.user_id}/events",
        "expirationDateTime": expiry.isoformat().replace("+00:00", "Z"),
        "clientState": "opaque-state",
        **extra,
    }


def create(world: World, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    response = world.graph().post("subscriptions", json=body(world, receiver, **extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


def expiry_minutes(world: World, sub: dict[str, Any]) -> float:
    expires = dt.datetime.fromisoformat(sub["expirationDateTime"].replace("0Z", "+00:00"))
    return (expires - sim_now(world)).total_seconds() / 60


def test_create_answers_201_with_client_state_and_valid_schema(
    world: World, receiver: Receiver
) -> None:
    """POST /subscriptions: 201 with the subscription (and its clientState), schema-valid."""
    sub = create(world, receiver)
    assert schema.validate("subscription", sub) == []
    assert sub["clientState"] == "opaque-state"
    assert sub["applicationId"] == world.client_id
    assert sub["latestSupportedTlsVersion"] == "v1_2"


def test_validation_token_is_url_encoded_and_echo_must_be_decoded(
    world: World, receiver: Receiver
) -> None:
    """The handshake sends ?validationToken=<url-encoded>, text/plain; the decoded echo passes."""
    create(world, receiver)
    (validation,) = receiver.validations
    assert validation["content_type"].startswith("text/plain")
    encoded = validation["raw_query"].split("validationToken=", 1)[1]
    assert encoded != validation["token"]  # it really was encoded
    assert unquote(encoded) == validation["token"]


def test_encoded_echo_fails_validation_with_400(world: World, receiver: Receiver) -> None:
    """Echoing the still-encoded token fails the handshake: 400, and no subscription exists."""
    receiver.validation_mode = "encoded"
    response = world.graph().post("subscriptions", json=body(world, receiver))
    assert response.status_code == 400
    assert "validation request failed" in response.json()["error"]["message"]
    assert world.graph().get("subscriptions").json()["value"] == []


@pytest.mark.parametrize("mode", ["status500", "wrong-type"])
def test_failed_handshake_is_400(world: World, receiver: Receiver, mode: str) -> None:
    """A non-200 or a non-text/plain answer to the handshake is a 400."""
    receiver.validation_mode = mode
    assert world.graph().post("subscriptions", json=body(world, receiver)).status_code == 400


def test_handshake_has_a_time_limit(world: World, receiver: Receiver) -> None:
    """An endpoint slower than the limit (10 s; scaled to 0.3 s here) fails the handshake."""
    world.sim.control.knobs(validation_timeout_s=0.3)
    receiver.validation_mode, receiver.slow_s = "slow", 1.0
    started = time.monotonic()
    assert world.graph().post("subscriptions", json=body(world, receiver)).status_code == 400
    assert time.monotonic() - started < 5


def test_same_url_for_lifecycle_means_two_validations(world: World, receiver: Receiver) -> None:
    """notificationUrl == lifecycleNotificationUrl: two validation requests."""
    create(world, receiver, lifecycleNotificationUrl=receiver.url)
    assert len(receiver.validations) == 2


def test_http_notification_url_is_refused_unless_allowed(world: World, receiver: Receiver) -> None:
    """Graph requires https: an http notificationUrl is 400 (a knob allows it for other tests)."""
    response = world.graph().post(
        "subscriptions", json=body(world, receiver, notificationUrl="http://127.0.0.1:9/hook")
    )
    assert response.status_code == 400
    assert "https" in response.json()["error"]["message"]


def test_expiry_under_45_minutes_is_raised_to_45(world: World, receiver: Receiver) -> None:
    """A requested lifetime of 5 minutes comes back as 45 minutes."""
    sub = create(world, receiver, minutes=5)
    assert 44.5 < expiry_minutes(world, sub) <= 45.1


def test_expiry_over_10080_minutes_is_400(world: World, receiver: Receiver) -> None:
    """Over 10,080 minutes (7 days) is refused; exactly 10,080 is accepted."""
    too_long = world.graph().post("subscriptions", json=body(world, receiver, minutes=10_081))
    assert too_long.status_code == 400
    assert "10080" in too_long.json()["error"]["message"]
    sub = create(world, receiver, minutes=10_079)
    assert expiry_minutes(world, sub) > 10_070


def test_duplicate_is_409(world: World, receiver: Receiver) -> None:
    """The same app, resource and changeType again: 409."""
    create(world, receiver)
    again = world.graph().post("subscriptions", json=body(world, receiver))
    assert again.status_code == 409


def test_over_1000_per_mailbox_is_403(world: World, receiver: Receiver) -> None:
    """The 1,001st subscription on one mailbox (all apps together) is 403 naming the limit."""
    other_app, _ = world.new_app(["Calendars.Read"])
    assert world.sim.control.bulk_subscriptions(world.upn, other_app, 999) == 999
    create(world, receiver)
    over = world.graph().post("subscriptions", json=body(world, receiver, changeType="created"))
    assert over.status_code == 403
    assert "1000" in over.json()["error"]["message"]


def test_get_never_returns_client_state(world: World, receiver: Receiver) -> None:
    """GET by id and GET list both answer clientState null."""
    sub = create(world, receiver)
    graph = world.graph()
    assert graph.get(f"subscriptions/{sub['id']}").json()["clientState"] is None
    listed = graph.get("subscriptions").json()["value"]
    assert [s["clientState"] for s in listed] == [None]
    assert all(schema.validate("subscription", s) == [] for s in listed)


def test_renew_then_delete_then_404(world: World, receiver: Receiver) -> None:
    """PATCH expirationDateTime renews (200); DELETE is 204; afterwards GET and PATCH are 404."""
    sub = create(world, receiver)
    graph = world.graph()
    later = (sim_now(world) + dt.timedelta(hours=48)).isoformat().replace("+00:00", "Z")
    renewed = graph.patch(f"subscriptions/{sub['id']}", json={"expirationDateTime": later})
    assert renewed.status_code == 200
    assert expiry_minutes(world, renewed.json()) > 47 * 60
    assert graph.delete(f"subscriptions/{sub['id']}").status_code == 204
    assert graph.get(f"subscriptions/{sub['id']}").status_code == 404
    gone = graph.patch(f"subscriptions/{sub['id']}", json={"expirationDateTime": later})
    assert gone.status_code == 404


def test_expired_subscription_is_gone(world: World, receiver: Receiver) -> None:
    """Once the virtual clock passes expirationDateTime the subscription is 404."""
    sub = create(world, receiver, minutes=45)
    world.sim.control.advance(46 * 60)
    assert world.graph().get(f"subscriptions/{sub['id']}").status_code == 404


def test_lifecycle_url_cannot_be_added_by_patch(world: World, receiver: Receiver) -> None:
    """lifecycleNotificationUrl cannot be added later by PATCH: 400 (recreate instead)."""
    sub = create(world, receiver)
    response = world.graph().patch(
        f"subscriptions/{sub['id']}", json={"lifecycleNotificationUrl": receiver.url}
    )
    assert response.status_code == 400


def test_reauthorize_is_204_and_patch_right_after_is_refused(
    world: World, receiver: Receiver
) -> None:
    """POST /reauthorize: 204; a PATCH of the same subscription within 10 minutes is refused."""
    sub = create(world, receiver)
    graph = world.graph()
    assert graph.post(f"subscriptions/{sub['id']}/reauthorize").status_code == 204
    later = (sim_now(world) + dt.timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert (
        graph.patch(f"subscriptions/{sub['id']}", json={"expirationDateTime": later}).status_code
        == 409
    )
    world.sim.control.advance(601)
    later = (sim_now(world) + dt.timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert (
        world.graph()
        .patch(f"subscriptions/{sub['id']}", json={"expirationDateTime": later})
        .status_code
        == 200
    )


@pytest.mark.parametrize(
    "resource",
    [
        "users/{id}/events/AAMkAGI=",
        "me/events",
        "users/{id}/calendarView",
        "users/nobody@x.example/events",
    ],
)
def test_unsupported_resources_are_refused(world: World, receiver: Receiver, resource: str) -> None:
    """A single event path, /me, calendarView or an unknown user cannot be subscribed to."""
    response = world.graph().post(
        "subscriptions", json=body(world, receiver, resource=resource.format(id=world.user_id))
    )
    assert response.status_code in (400, 404)


def test_read_permission_is_needed(world: World, receiver: Receiver) -> None:
    """An app without Calendars.Read(Write) gets 403 on create."""
    client_id, secret = world.new_app(["User.Read.All"])
    from simworld import token_for

    graph = world.graph(token_for(world.sim, world.tenant_id, client_id, secret))
    assert graph.post("subscriptions", json=body(world, receiver)).status_code == 403


def test_list_is_paged(world: World, receiver: Receiver) -> None:
    """GET /subscriptions pages with @odata.nextLink."""
    world.sim.control.knobs(subscription_list_page_size=2)
    for change in ("created", "updated", "deleted"):
        create(world, receiver, changeType=change)
    graph = world.graph()
    first = graph.get("subscriptions").json()
    assert len(first["value"]) == 2
    second = graph.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 1
    assert "@odata.nextLink" not in second


def test_include_resource_data_is_refused(world: World, receiver: Receiver) -> None:
    """Rich notifications (includeResourceData) need an encryption certificate: 400 here."""
    response = world.graph().post(
        "subscriptions", json=body(world, receiver, includeResourceData=True)
    )
    assert response.status_code == 400


def test_list_calls_are_paced_per_tenant(world: World) -> None:
    """GET /subscriptions over its pace (25 per 20 s per tenant; 2 here) is 429."""
    world.sim.control.knobs(subscription_list_per_window=2)
    graph = world.graph()
    assert [graph.get("subscriptions").status_code for _ in range(3)] == [200, 200, 429]
