"""Pure: the mailbox lifecycle, as one state machine. Every rule of how a mailbox moves between
webhook mode, poll mode and back lives in the table below; services load the record, `step` the
machine with an event, store the new state and run the actions it names (h11's `_state.py` is
the model: states and events are data, an illegal transition raises).

    ENROLLED ──subscribed──> SUBSCRIBED ──subscription removed / expired──> ENROLLED (+subscribe)
       │  ^                     │  └─reauthorization required: reauthorize, resync; missed: resync
       │  └─────options: webhook┤
       ├─refused / paced / no callback URL──> POLL_FALLBACK ──resubscribe due──> (subscribe)
       └─options: poll──> POLL_CHOSEN          (POLL_FALLBACK + subscribed ──> SUBSCRIBED, resync)
    any active state ──credential rejected──> CREDENTIAL_INVALID ──credential restored──> back
                                                          (+ a round when it missed rounds)
    any state ──removed──> REMOVED ──enrolled──> ENROLLED or POLL_CHOSEN

Poll-mode states (POLL_CHOSEN, POLL_FALLBACK, CREDENTIAL_INVALID) are synced by the poll timer at
the mailbox's interval, never more often than once a minute: a credential that is fixed is thus
noticed by the next poll round. Graph's lifecycle events:
https://learn.microsoft.com/graph/change-notifications-lifecycle-events
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.core.model import Mode, Trigger
from shared.errors import InputError


class State(StrEnum):
    ENROLLED = "enrolled"  # enrolled for webhook mode, no subscription yet
    SUBSCRIBED = "subscribed"  # a live Graph subscription sends change notifications
    POLL_CHOSEN = "poll_chosen"  # poll mode chosen in the mailbox options
    POLL_FALLBACK = "poll_fallback"  # webhook wanted, subscription impossible for now (reason)
    CREDENTIAL_INVALID = "credential_invalid"  # Entra rejects the app's credential
    REMOVED = "removed"  # not synced; the mirror is kept (or purged)


class Fallback(StrEnum):
    """Why a webhook mailbox is polled instead."""

    REFUSED = "refused"  # Graph refused the subscription (its code is kept)
    PACED = "paced"  # the tenant's subscription-write budget is spent for now
    NO_CALLBACK_URL = "no_callback_url"  # PUBLIC_BASE_URL is not set


POLLED = frozenset({State.POLL_CHOSEN, State.POLL_FALLBACK, State.CREDENTIAL_INVALID})
ACTIVE = frozenset(State) - {State.REMOVED}


# --- events --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enrolled:
    mode: Mode


@dataclass(frozen=True)
class OptionsChanged:
    mode: Mode
    resync: bool  # window, body type or private handling changed: the mirror must be rebuilt


@dataclass(frozen=True)
class Subscribed:
    subscription_id: str


@dataclass(frozen=True)
class Refused:
    graph_code: str
    message: str


@dataclass(frozen=True)
class Paced:
    pass


@dataclass(frozen=True)
class NoCallbackUrl:
    pass


@dataclass(frozen=True)
class ResubscribeDue:
    pass


@dataclass(frozen=True)
class ReauthorizationRequired:
    subscription_id: str


@dataclass(frozen=True)
class SubscriptionRemoved:
    subscription_id: str


@dataclass(frozen=True)
class Missed:
    subscription_id: str


@dataclass(frozen=True)
class Expired:
    subscription_id: str


@dataclass(frozen=True)
class PollDue:
    pass


@dataclass(frozen=True)
class CredentialRejected:
    code: str
    message: str


@dataclass(frozen=True)
class CredentialRestored:
    mode: Mode
    subscribed: bool  # a subscription is still on record
    resync: bool = False  # it missed rounds (restored by the tenant's token, not by its own round)


@dataclass(frozen=True)
class Removed:
    purge: bool


Event = (
    Enrolled
    | OptionsChanged
    | Subscribed
    | Refused
    | Paced
    | NoCallbackUrl
    | ResubscribeDue
    | ReauthorizationRequired
    | SubscriptionRemoved
    | Missed
    | Expired
    | PollDue
    | CredentialRejected
    | CredentialRestored
    | Removed
)


# --- actions -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subscribe:
    """Create a subscription; the result is stepped back in (Subscribed, Refused, Paced...)."""


@dataclass(frozen=True)
class DropSubscriptions:
    """Delete the mailbox's subscriptions in Graph and forget them."""


@dataclass(frozen=True)
class ForgetSubscription:
    """Graph no longer has it: forget our record (no Graph call)."""

    subscription_id: str


@dataclass(frozen=True)
class Reauthorize:
    subscription_id: str


@dataclass(frozen=True)
class Sync:
    """A delta round of the mailbox (`full`: the whole window with a diff of the mirror)."""

    trigger: Trigger
    full: bool = False


@dataclass(frozen=True)
class ForgetCursor:
    """Drop the delta cursor (the next round starts from scratch)."""


@dataclass(frozen=True)
class PurgeMirror:
    """Delete the mirrored events and the mailbox record."""


Action = (
    Subscribe
    | DropSubscriptions
    | ForgetSubscription
    | Reauthorize
    | Sync
    | ForgetCursor
    | PurgeMirror
)


@dataclass(frozen=True)
class Transition:
    """Where an event takes a mailbox, what must happen, and the reason an operator sees."""

    state: State
    actions: tuple[Action, ...] = ()
    reason: str = ""  # "" keeps the reason on record (a transition that stays where it is)
    fallback: Fallback | None = None
    code: str = ""  # Graph's or Entra's code, when a refusal gave one


class LifecycleError(InputError):
    """An event that cannot happen in the mailbox's state (a bug or a stale message)."""

    code = "illegal_transition"


# --- the table -----------------------------------------------------------------------------------
Rule = Callable[[Any], Transition]


def _enrolled(e: Enrolled) -> Transition:
    if e.mode == "poll":
        return Transition(State.POLL_CHOSEN, (Sync(Trigger.ENROL, full=True),), "poll mode chosen")
    return Transition(
        State.ENROLLED, (Subscribe(), Sync(Trigger.ENROL, full=True)), "not yet subscribed"
    )


def _options(stay: State) -> Rule:
    def rule(e: OptionsChanged) -> Transition:
        sync: tuple[Action, ...] = (Sync(Trigger.OPTIONS, full=True),) if e.resync else ()
        if e.mode == "poll":
            actions = (DropSubscriptions(), *sync)
            return Transition(State.POLL_CHOSEN, actions, "poll mode chosen in the mailbox options")
        if stay is State.SUBSCRIBED:
            return Transition(State.SUBSCRIBED, sync, "subscribed")
        return Transition(State.ENROLLED, (Subscribe(), *sync), "not yet subscribed")

    return rule


def _subscribed(resync: bool) -> Rule:
    def rule(e: Subscribed) -> Transition:
        del e
        return Transition(
            State.SUBSCRIBED, (Sync(Trigger.RESUBSCRIBED),) if resync else (), "subscribed"
        )

    return rule


def _refused(e: Refused) -> Transition:
    return Transition(
        State.POLL_FALLBACK,
        (),
        f"subscription refused: {e.message}",
        Fallback.REFUSED,
        e.graph_code,
    )


def _paced(e: Paced) -> Transition:
    del e
    reason = "subscription writes paced for this tenant; retrying soon"
    return Transition(State.POLL_FALLBACK, (), reason, Fallback.PACED)


def _no_url(e: NoCallbackUrl) -> Transition:
    del e
    reason = "PUBLIC_BASE_URL is not set: Graph has no URL to call"
    return Transition(State.POLL_FALLBACK, (), reason, Fallback.NO_CALLBACK_URL)


def _reauthorize(e: ReauthorizationRequired) -> Transition:
    actions = (Reauthorize(e.subscription_id), Sync(Trigger.LIFECYCLE))
    return Transition(State.SUBSCRIBED, actions, "subscribed")


def _gone(trigger: Trigger) -> Rule:
    def rule(e: SubscriptionRemoved | Expired) -> Transition:
        actions = (ForgetSubscription(e.subscription_id), Subscribe(), Sync(trigger))
        return Transition(State.ENROLLED, actions, "subscription gone; subscribing again")

    return rule


def _missed(stay: State) -> Rule:
    def rule(e: Missed) -> Transition:
        del e
        return Transition(stay, (Sync(Trigger.LIFECYCLE),))

    return rule


def _poll(stay: State) -> Rule:
    def rule(e: PollDue) -> Transition:
        del e
        return Transition(stay, (Sync(Trigger.POLL),))

    return rule


def _resubscribe(stay: State) -> Rule:
    def rule(e: ResubscribeDue) -> Transition:
        del e
        return Transition(stay, (Subscribe(),))

    return rule


def _rejected(e: CredentialRejected) -> Transition:
    reason = f"the app's credential was rejected: {e.message}"
    return Transition(State.CREDENTIAL_INVALID, (), reason, code=e.code)


def _restored(e: CredentialRestored) -> Transition:
    sync: tuple[Action, ...] = (Sync(Trigger.RESTORED),) if e.resync else ()
    if e.mode == "poll":
        return Transition(State.POLL_CHOSEN, sync, "poll mode chosen")
    if e.subscribed:
        return Transition(State.SUBSCRIBED, sync, "subscribed")
    return Transition(State.ENROLLED, (Subscribe(), *sync), "not yet subscribed")


def _removed(e: Removed) -> Transition:
    actions: tuple[Action, ...] = (DropSubscriptions(), ForgetCursor())
    return Transition(State.REMOVED, (*actions, PurgeMirror()) if e.purge else actions, "removed")


_FALLBACKS: dict[type, Rule] = {Refused: _refused, Paced: _paced, NoCallbackUrl: _no_url}
_ALWAYS: dict[type, Rule] = {CredentialRejected: _rejected, Removed: _removed}

TABLE: dict[State, dict[type, Rule]] = {
    State.ENROLLED: {
        OptionsChanged: _options(State.ENROLLED),
        ResubscribeDue: _resubscribe(State.ENROLLED),
        Subscribed: _subscribed(resync=False),
        **_FALLBACKS,
        Missed: _missed(State.ENROLLED),
        **_ALWAYS,
    },
    State.SUBSCRIBED: {
        OptionsChanged: _options(State.SUBSCRIBED),
        Subscribed: _subscribed(resync=False),
        ReauthorizationRequired: _reauthorize,
        SubscriptionRemoved: _gone(Trigger.LIFECYCLE),
        Expired: _gone(Trigger.EXPIRED),
        Missed: _missed(State.SUBSCRIBED),
        **_ALWAYS,
    },
    State.POLL_CHOSEN: {
        OptionsChanged: _options(State.POLL_CHOSEN),
        PollDue: _poll(State.POLL_CHOSEN),
        **_ALWAYS,
    },
    State.POLL_FALLBACK: {
        OptionsChanged: _options(State.POLL_FALLBACK),
        ResubscribeDue: _resubscribe(State.POLL_FALLBACK),
        Subscribed: _subscribed(resync=True),
        **_FALLBACKS,
        PollDue: _poll(State.POLL_FALLBACK),
        **_ALWAYS,
    },
    State.CREDENTIAL_INVALID: {
        OptionsChanged: _options(State.CREDENTIAL_INVALID),
        ResubscribeDue: _resubscribe(State.CREDENTIAL_INVALID),
        Subscribed: _subscribed(resync=True),
        PollDue: _poll(State.CREDENTIAL_INVALID),
        Missed: _missed(State.CREDENTIAL_INVALID),
        ReauthorizationRequired: _reauthorize,
        SubscriptionRemoved: _gone(Trigger.LIFECYCLE),
        Expired: _gone(Trigger.EXPIRED),
        CredentialRestored: _restored,
        **_FALLBACKS,
        **_ALWAYS,
    },
    State.REMOVED: {Enrolled: _enrolled, Removed: _removed},
}


def step(state: State | None, event: Event) -> Transition:
    """The transition for `event` in `state` (None: never enrolled); LifecycleError if illegal."""
    if state is None:
        if isinstance(event, Enrolled):
            return _enrolled(event)
        raise LifecycleError(f"{type(event).__name__} for a mailbox that was never enrolled")
    rule = TABLE[state].get(type(event))
    if rule is None:
        raise LifecycleError(
            f"{type(event).__name__} cannot happen to a mailbox in state {state.value}; "
            "it was ignored (a stale or duplicated message)"
        )
    return rule(event)


def allows(state: State, event_type: type) -> bool:
    """Whether `event_type` is legal in `state` (for callers that skip rather than raise)."""
    return event_type in TABLE[state]


def mode_of(state: State) -> Mode:
    """The mode an operator sees: webhook while notifications arrive, poll otherwise."""
    return "webhook" if state is State.SUBSCRIBED else "poll"
