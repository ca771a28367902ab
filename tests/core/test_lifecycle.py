"""The mailbox lifecycle machine: every legal transition, and every illegal one refused."""

from __future__ import annotations

import pytest

from shared.core.lifecycle import (
    ACTIVE,
    TABLE,
    CredentialRejected,
    CredentialRestored,
    DropSubscriptions,
    Enrolled,
    Event,
    Expired,
    Fallback,
    ForgetCursor,
    ForgetSubscription,
    LifecycleError,
    Missed,
    NoCallbackUrl,
    OptionsChanged,
    Paced,
    PollDue,
    PurgeMirror,
    ReauthorizationRequired,
    Reauthorize,
    Refused,
    Removed,
    ResubscribeDue,
    State,
    Subscribe,
    Subscribed,
    SubscriptionRemoved,
    Sync,
    Transition,
    mode_of,
    step,
)

S = State
WEBHOOK_SYNC = Sync("options", full=True)

CASES: list[tuple[State | None, Event, State, tuple[object, ...]]] = [
    (None, Enrolled("webhook"), S.ENROLLED, (Subscribe(), Sync("enrol", full=True))),
    (None, Enrolled("poll"), S.POLL_CHOSEN, (Sync("enrol", full=True),)),
    (S.REMOVED, Enrolled("webhook"), S.ENROLLED, (Subscribe(), Sync("enrol", full=True))),
    (S.ENROLLED, Subscribed("s1"), S.SUBSCRIBED, ()),
    (S.ENROLLED, Refused("ExtensionError", "quota"), S.POLL_FALLBACK, ()),
    (S.ENROLLED, Paced(), S.POLL_FALLBACK, ()),
    (S.ENROLLED, NoCallbackUrl(), S.POLL_FALLBACK, ()),
    (S.SUBSCRIBED, OptionsChanged("webhook", resync=False), S.SUBSCRIBED, ()),
    (S.SUBSCRIBED, OptionsChanged("webhook", resync=True), S.SUBSCRIBED, (WEBHOOK_SYNC,)),
    (S.SUBSCRIBED, OptionsChanged("poll", resync=False), S.POLL_CHOSEN, (DropSubscriptions(),)),
    (S.POLL_CHOSEN, OptionsChanged("webhook", resync=False), S.ENROLLED, (Subscribe(),)),
    (
        S.POLL_FALLBACK,
        OptionsChanged("webhook", resync=True),
        S.ENROLLED,
        (Subscribe(), WEBHOOK_SYNC),
    ),
    (
        S.SUBSCRIBED,
        ReauthorizationRequired("s1"),
        S.SUBSCRIBED,
        (Reauthorize("s1"), Sync("lifecycle")),
    ),
    (
        S.SUBSCRIBED,
        SubscriptionRemoved("s1"),
        S.ENROLLED,
        (ForgetSubscription("s1"), Subscribe(), Sync("lifecycle")),
    ),
    (
        S.SUBSCRIBED,
        Expired("s1"),
        S.ENROLLED,
        (ForgetSubscription("s1"), Subscribe(), Sync("subscription expired")),
    ),
    (S.SUBSCRIBED, Missed("s1"), S.SUBSCRIBED, (Sync("lifecycle"),)),
    (S.POLL_CHOSEN, PollDue(), S.POLL_CHOSEN, (Sync("poll"),)),
    (S.POLL_FALLBACK, PollDue(), S.POLL_FALLBACK, (Sync("poll"),)),
    (S.POLL_FALLBACK, ResubscribeDue(), S.POLL_FALLBACK, (Subscribe(),)),
    (S.POLL_FALLBACK, Subscribed("s2"), S.SUBSCRIBED, (Sync("resubscribed"),)),
    (S.POLL_FALLBACK, Refused("ExtensionError", "quota"), S.POLL_FALLBACK, ()),
    (S.SUBSCRIBED, CredentialRejected("7000215", "bad secret"), S.CREDENTIAL_INVALID, ()),
    (S.POLL_CHOSEN, CredentialRejected("7000215", "bad secret"), S.CREDENTIAL_INVALID, ()),
    (S.CREDENTIAL_INVALID, PollDue(), S.CREDENTIAL_INVALID, (Sync("poll"),)),
    (S.CREDENTIAL_INVALID, CredentialRestored("webhook", subscribed=True), S.SUBSCRIBED, ()),
    (
        S.CREDENTIAL_INVALID,
        CredentialRestored("webhook", subscribed=False),
        S.ENROLLED,
        (Subscribe(),),
    ),
    (S.CREDENTIAL_INVALID, CredentialRestored("poll", subscribed=False), S.POLL_CHOSEN, ()),
    # restored because the tenant's token works again: the rounds it missed are caught up
    (
        S.CREDENTIAL_INVALID,
        CredentialRestored("webhook", subscribed=True, resync=True),
        S.SUBSCRIBED,
        (Sync("credential restored"),),
    ),
    (
        S.CREDENTIAL_INVALID,
        CredentialRestored("webhook", subscribed=False, resync=True),
        S.ENROLLED,
        (Subscribe(), Sync("credential restored")),
    ),
    (
        S.CREDENTIAL_INVALID,
        CredentialRestored("poll", subscribed=False, resync=True),
        S.POLL_CHOSEN,
        (Sync("credential restored"),),
    ),
    (
        S.CREDENTIAL_INVALID,
        Expired("s1"),
        S.ENROLLED,
        (ForgetSubscription("s1"), Subscribe(), Sync("subscription expired")),
    ),
    (S.SUBSCRIBED, Removed(purge=False), S.REMOVED, (DropSubscriptions(), ForgetCursor())),
    (
        S.POLL_FALLBACK,
        Removed(purge=True),
        S.REMOVED,
        (DropSubscriptions(), ForgetCursor(), PurgeMirror()),
    ),
    (
        S.REMOVED,
        Removed(purge=True),
        S.REMOVED,
        (DropSubscriptions(), ForgetCursor(), PurgeMirror()),
    ),
]


@pytest.mark.parametrize(("state", "event", "after", "actions"), CASES)
def test_transitions(
    state: State | None, event: Event, after: State, actions: tuple[object, ...]
) -> None:
    """Each (state, event) goes to its state with exactly its actions, in order."""
    transition = step(state, event)
    assert (transition.state, transition.actions) == (after, actions)


ILLEGAL: list[tuple[State | None, Event]] = [
    (None, PollDue()),
    (S.REMOVED, Subscribed("s1")),
    (S.REMOVED, PollDue()),
    (S.REMOVED, OptionsChanged("webhook", resync=False)),
    (S.SUBSCRIBED, PollDue()),  # a subscribed mailbox is not polled
    (S.SUBSCRIBED, Enrolled("webhook")),  # already enrolled: that is OptionsChanged
    (S.POLL_CHOSEN, Subscribed("s1")),  # poll by choice never subscribes
    (S.POLL_CHOSEN, ReauthorizationRequired("s1")),
    (S.POLL_FALLBACK, Missed("s1")),  # no subscription to miss anything
    (S.ENROLLED, CredentialRestored("webhook", subscribed=False)),
]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_transitions_raise(state: State | None, event: Event) -> None:
    """An event that cannot happen in a state raises LifecycleError naming both."""
    with pytest.raises(LifecycleError, match=type(event).__name__):
        step(state, event)


def test_fallbacks_are_typed_with_the_graph_code() -> None:
    """Falling back to poll mode says why as data: the fallback kind and Graph's code."""
    refused = step(S.ENROLLED, Refused("ExtensionError", "over the quota"))
    assert (refused.fallback, refused.code) == (Fallback.REFUSED, "ExtensionError")
    assert refused.reason == "subscription refused: over the quota"
    assert step(S.ENROLLED, Paced()).fallback is Fallback.PACED
    assert step(S.ENROLLED, NoCallbackUrl()).fallback is Fallback.NO_CALLBACK_URL
    assert step(S.SUBSCRIBED, CredentialRejected("7000215", "x")).code == "7000215"


def test_every_active_state_can_be_removed_and_rejected() -> None:
    """Removal and a rejected credential are legal in every active state, so none is stuck."""
    for state in ACTIVE:
        assert step(state, Removed(purge=False)).state is S.REMOVED
        assert step(state, CredentialRejected("c", "m")).state is S.CREDENTIAL_INVALID


def test_every_state_has_a_way_out() -> None:
    """Each state reaches every other through some chain of events (no dead ends)."""
    edges: dict[State, set[State]] = {s: set() for s in State}
    samples: list[Event] = [case[1] for case in CASES]
    for state in State:
        for event in samples:
            if type(event) in TABLE[state]:
                edges[state].add(step(state, event).state)
    for start in State:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert seen == set(State), (start, set(State) - seen)


def test_mode_follows_the_state() -> None:
    """Only a subscribed mailbox shows webhook mode; every other state is polled."""
    assert [s for s in State if mode_of(s) == "webhook"] == [S.SUBSCRIBED]


def test_transitions_are_frozen_data() -> None:
    """Transitions are values: equal when equal, immutable."""
    t = step(S.ENROLLED, Subscribed("s1"))
    assert t == Transition(S.SUBSCRIBED, (), "subscribed")
    with pytest.raises(AttributeError):
        t.state = S.REMOVED  # type: ignore[misc]
