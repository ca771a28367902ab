"""Two-way sync end to end through the dev host, with no echo loop: two webhook subscribers,
each a real HTTPS receiver that verifies every delivery with standardwebhooks and writes what it
receives back through the write API as its own writer. Agent A mirrors mailbox 1 into mailbox
2, agent B mailbox 2 into mailbox 1 (one link table between them, as one sync product keeps),
with idempotency keys derived from the source change (`<writer>:<change id>`).

What is pinned:
- With each subscriber's `excludeWriters` naming both agents' writers (or both agents writing
  as one sync product's writer, each excluding that one), a minute of people's edits on both
  sides (creates, renames, deletes, some on the copies) ends with both mailboxes holding exactly
  the expected events (no duplicate, none missing), and the agents' writes stop once the
  people stop.
- With `excludeWriters` naming only the subscriber itself (or nothing, which is the same here:
  an agent never reads the mailbox it writes into), it loops: each agent's write reaches the
  other agent as someone else's change, and the idempotency keys cannot stop it, since every
  round trip is a new mirror change with a new id. The event count stays bounded (the link
  table turns an echo into an update), but the writes never stop.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from standardwebhooks import Webhook

from devhost.local.stack import Stack
from tests.e2e.harness import Mailbox, at, enrol, wait_for
from tests.receiver import Receiver, run_receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

A, B = "mirror-a", "mirror-b"


@dataclass
class Links:
    """(mailbox, event id) <-> (other mailbox, event id): what the sync product remembers."""

    pairs: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, mailbox: str, event_id: str) -> tuple[str, str] | None:
        with self.lock:
            return self.pairs.get((mailbox, event_id))

    def link(self, one: tuple[str, str], other: tuple[str, str]) -> None:
        with self.lock:
            self.pairs[one], self.pairs[other] = other, one

    def unlink(self, one: tuple[str, str]) -> None:
        with self.lock:
            other = self.pairs.pop(one, None)
            if other is not None:
                self.pairs.pop(other, None)


@dataclass
class Agent:
    """A receiver's worker: verifies each delivery, skips repeats (same webhook id), and writes
    the change into the target mailbox through the write API, in the order received."""

    name: str
    writer: str
    stack: Stack
    source: Mailbox
    target: Mailbox
    receiver: Receiver
    secret: str
    links: Links
    writes: list[tuple[float, str, int]] = field(default_factory=list)  # (sent, action, status)
    causes: list[dict[str, Any]] = field(default_factory=list)  # the change behind each write
    errors: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    current: dict[str, Any] = field(default_factory=dict)

    def run(self) -> None:
        hook, taken = Webhook(self.secret), 0
        with self.stack.admin() as api:
            while not self.stop.is_set():
                with self.receiver.lock:
                    fresh = self.receiver.requests[taken:]
                taken += len(fresh)
                for request in fresh:
                    try:
                        change = hook.verify(request.body, request.headers)
                    except Exception as exc:  # a delivery that does not verify is a failure
                        self.errors.append(f"unverified delivery: {exc}")
                        continue
                    if change["id"] in self.seen:
                        continue
                    self.seen.add(change["id"])
                    self.current = {
                        k: change.get(k)
                        for k in ("type", "eventId", "sequence", "origin", "changedFields")
                    } | {
                        "at": time.monotonic(),
                        "subject": (change.get("event") or {}).get("subject"),
                    }
                    try:
                        self._apply(api, change)
                    except Exception as exc:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                if not fresh:
                    time.sleep(0.05)

    def _write(self, api: httpx.Client, body: dict[str, Any], key: str) -> httpx.Response:
        started = time.monotonic()  # a write counts from when it was sent
        response = api.post(
            self.target.path + "/writes",
            json=body | {"writer": self.writer},
            headers={"Idempotency-Key": key},
        )
        self.writes.append((started, body["action"], response.status_code))
        self.causes.append(self.current)
        if response.status_code not in (200, 201, 404):
            self.errors.append(f"{body['action']}: {response.status_code} {response.text[:300]}")
        return response

    def _apply(self, api: httpx.Client, change: dict[str, Any]) -> None:
        source, target = self.source.user_id, self.target.user_id
        key = f"{self.name}:{change['id']}"
        linked = self.links.get(source, change["eventId"])
        if change["type"] == "deleted":
            if linked is not None:
                self.links.unlink((source, change["eventId"]))
                self._write(api, {"action": "delete", "eventId": linked[1]}, key)
            return
        event = change["event"]
        fields = {
            "subject": event["subject"],
            "start": {"dateTime": event["start"].removesuffix("Z"), "timeZone": "UTC"},
            "end": {"dateTime": event["end"].removesuffix("Z"), "timeZone": "UTC"},
        }
        if linked is None:
            made = self._write(api, {"action": "create", "event": fields}, key)
            if made.status_code == 201:
                self.links.link((source, change["eventId"]), (target, made.json()["eventId"]))
            return
        self._write(api, {"action": "update", "eventId": linked[1], "event": fields}, key)


@contextmanager
def _agents(
    stack: Stack,
    one: Mailbox,
    two: Mailbox,
    exclude: dict[str, list[str]],
    writers: dict[str, str] | None = None,
) -> Iterator[tuple[Agent, Agent]]:
    """Agents A (mailbox 1 -> 2) and B (2 -> 1) with their receivers and subscriptions, each
    writing as its own name unless `writers` names another."""
    writers = writers or {A: A, B: B}
    cert = (stack.sim.host_cert_path, stack.sim.host_key_path)
    links = Links()
    with run_receiver(cert=cert) as hook_a, run_receiver(cert=cert) as hook_b:
        agents = []
        for name, receiver, source, target in ((A, hook_a, one, two), (B, hook_b, two, one)):
            with stack.admin() as api:
                made = api.post(
                    "/webhooks",
                    json={
                        "url": receiver.url,
                        "filter": {"mailboxes": [source.user_id], "excludeWriters": exclude[name]},
                        "description": f"two-way test agent {name}",
                    },
                )
                assert made.status_code == 201, made.text
            agents.append(
                Agent(
                    name,
                    writers[name],
                    stack,
                    source,
                    target,
                    receiver,
                    made.json()["secret"],
                    links,
                )
            )
        threads = [threading.Thread(target=a.run, name=a.name, daemon=True) for a in agents]
        for thread in threads:
            thread.start()
        try:
            yield agents[0], agents[1]
        finally:
            for agent in agents:
                agent.stop.set()
            for thread in threads:
                thread.join(timeout=10)


def _subjects(stack: Stack, mb: Mailbox) -> list[str]:
    """The mailbox's events in Graph (the simulator's calendar), by subject."""
    return sorted(str(e["subject"]) for e in stack.sim.control.list_events(mb.upn))


def _writes_after(agents: tuple[Agent, ...], moment: float) -> int:
    return sum(1 for a in agents for at_, _, _ in a.writes if at_ > moment)


@pytest.mark.parametrize(
    ("setup", "writers", "exclude"),
    [
        # A names both writers; B names none, with "*" (every writer).
        ("two writers, each excluding both", {A: A, B: B}, {A: [A, B], B: ["*"]}),
        (
            "one writer, excluding itself",
            {A: "twoway", B: "twoway"},
            {A: ["twoway"], B: ["twoway"]},
        ),
    ],
)
def test_two_agents_mirroring_each_other_stop_when_people_stop(
    stack: Stack, setup: str, writers: dict[str, str], exclude: dict[str, list[str]]
) -> None:
    """A minute of edits on both mailboxes (creates, renames, deletes; on originals and on
    copies): both mailboxes end with exactly the expected events, no duplicate, every write
    verified and answered, and no agent writes once the edits have been mirrored; whether the
    agents write as two writers that each subscriber excludes, or as one sync product's single
    writer that each excludes as itself."""
    one, two = enrol(stack), enrol(stack)
    rng = random.Random(7)
    with _agents(stack, one, two, exclude, writers) as (agent_a, agent_b):
        # logical event -> (mailbox it was made in, its id there, its subject now)
        made: dict[str, tuple[Mailbox, str, str]] = {}
        touched: dict[str, float] = {}
        expected: dict[str, str] = {}
        traffic: list[tuple[str, ...]] = []
        started = time.monotonic()
        step = 0
        while time.monotonic() - started < 60:
            step += 1
            now = time.monotonic()
            settled = [k for k in expected if now - touched[k] > 12]
            choice = rng.random()
            if choice < 0.45 or len(settled) < 2:
                home = one if step % 2 else two
                name = f"{'m1' if home is one else 'm2'}-{step}"
                event_id = home.create({"subject": name, **at(1 + step % 5, 8 + step % 9)})
                made[name], touched[name], expected[name] = (home, event_id, name), now, name
            elif choice < 0.85:
                name = rng.choice(settled)
                home, event_id, _ = made[name]
                new = f"{name} v{step}"
                if rng.random() < 0.5:  # edit the copy in the other mailbox instead
                    other = agent_a.links.get(home.user_id, event_id)
                    assert other is not None, f"{name} was never mirrored"
                    mailbox = two if home is one else one
                    mailbox.update(other[1], {"subject": new})
                    traffic.append((time.strftime("%H:%M:%S"), "copy", mailbox.user_id[:8], new))
                else:
                    home.update(event_id, {"subject": new})
                    traffic.append((time.strftime("%H:%M:%S"), "orig", home.user_id[:8], new))
                touched[name], expected[name] = now, new
            else:
                name = rng.choice(settled)
                home, event_id, _ = made[name]
                home.delete(event_id)
                del expected[name], touched[name]
            time.sleep(2.0)
        want = sorted(expected.values())

        def mirrored() -> bool:
            return _subjects(stack, one) == want == _subjects(stack, two)

        wait_for(mirrored, timeout=90, what="both mailboxes hold the expected events")
        quiet, quiet_at = time.monotonic(), time.strftime("%H:%M:%S")
        time.sleep(12)  # past the debounce, a round, a delivery and a write, several times
        late = [
            (a.name, w, c)
            for a in (agent_a, agent_b)
            for w, c in zip(a.writes, a.causes, strict=True)
            if w[0] > quiet
        ]
        if late:  # what led there: every change of that event the feed holds
            event_ids = {c["eventId"] for _, _, c in late}
            history = []
            with stack.admin() as api:
                for mb in (one, two):
                    page = api.get(mb.path + "/changes", params={"limit": "1000"}).json()
                    history += [
                        (
                            mb.user_id[:8],
                            c["sequence"][-3:],
                            c["type"],
                            c["occurredAt"],
                            c["changeKey"],
                            c["origin"],
                            (c["event"] or {}).get("subject"),
                            c["changedFields"],
                        )
                        for c in page["value"]
                        if c["eventId"] in event_ids
                    ]
                calls = [
                    (r["at"][11:23], r["userId"][:8], r["method"], r.get("kind"), r["status"])
                    for mb in (one, two)
                    for r in api.get(
                        "/log", params={"tenant": stack.tenant_id, "user": mb.user_id, "top": "60"}
                    ).json()["value"]
                ]
            raise AssertionError(
                f"writes after the edits were mirrored (quiet at {quiet_at}): {late}\n{history}"
                f"\n{traffic[-4:]}\n{sorted(calls)[-40:]}"
            )
        assert _subjects(stack, one) == want == _subjects(stack, two)
        assert agent_a.errors == agent_b.errors == []
        writes = len(agent_a.writes) + len(agent_b.writes)
        print(
            f"\ntwo-way, {setup}: {step} edits, {len(want)} events each side, "
            f"{writes} writes, {len(agent_a.seen) + len(agent_b.seen)} changes received"
        )
        one.converged()
        two.converged()


@pytest.mark.parametrize(
    ("exclusion", "exclude"), [("self", {A: [A], B: [B]}), ("none", {A: [], B: []})]
)
def test_excluding_only_itself_loops_and_keys_do_not_stop_it(
    stack: Stack, exclusion: str, exclude: dict[str, list[str]]
) -> None:
    """Each subscriber excluding only its own writer, or none: one person's create makes the
    agents write to each other without end (every echo is a new change with a new id, so a new
    key); the event count stays one per side, thanks to the links, while the writes go on."""
    one, two = enrol(stack), enrol(stack)
    with _agents(stack, one, two, exclude) as (agent_a, agent_b):
        one.create({"subject": "Ping", **at(2, 10)})
        wait_for(
            lambda: _subjects(stack, two) == ["Ping"], timeout=30, what="the copy in mailbox 2"
        )
        quiet = time.monotonic()
        time.sleep(20)
        looping = _writes_after((agent_a, agent_b), quiet)
        in_flight = _writes_after((agent_a, agent_b), quiet + 10)
        assert looping >= 6, looping  # a person made one event; the agents keep writing
        assert in_flight >= 3, in_flight  # still writing 10 s later: it does not converge
        assert _subjects(stack, one) == ["Ping"] == _subjects(stack, two)  # no duplicate
        print(f"\ntwo-way, excludeWriters {exclusion}: {looping} writes in 20 s after one create")
    with stack.admin() as api:  # stop the loop: remove the subscribers
        for sub in api.get("/webhooks").json()["value"]:
            api.delete(f"/webhooks/{quote(sub['id'], safe='')}")
