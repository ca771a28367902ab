"""The intake's arrival memory: a mailbox's request goes at once at most every `quiet` seconds,
the rest of its burst waits out the debounce, and the memory stays bounded."""

from __future__ import annotations

from shared.core.intake import ArrivalGate


def gate(max_entries: int = 100) -> ArrivalGate:
    return ArrivalGate(quiet=3.0, debounce=3.0, max_entries=max_entries)


def test_the_first_notification_of_a_quiet_mailbox_goes_at_once() -> None:
    """The first arrival has no delay; one 1 s later waits the debounce."""
    g = gate()
    assert g.delay("t_u", now=100.0) == 0.0
    assert g.delay("t_u", now=101.0) == 3.0


def test_a_steady_stream_gets_a_round_at_once_every_quiet_seconds() -> None:
    """A mailbox changing every 2 s: one request at once per `quiet` (3 s), the others wait."""
    g = gate()
    delays = [g.delay("t_u", now=t) for t in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 10.5)]
    assert delays == [0.0, 3.0, 0.0, 3.0, 0.0, 3.0, 3.0]


def test_at_once_again_after_the_quiet_time() -> None:
    """`quiet` seconds after the last request let through, the next one goes at once again."""
    g = gate()
    g.delay("t_u", now=0.0)
    assert g.delay("t_u", now=2.9) == 3.0
    assert g.delay("t_u", now=3.0) == 0.0
    assert g.delay("t_u", now=3.5) == 3.0


def test_mailboxes_are_gated_apart() -> None:
    """One mailbox's burst does not delay another mailbox's first notification."""
    g = gate()
    g.delay("t_a", now=0.0)
    assert g.delay("t_b", now=0.5) == 0.0
    assert g.delay("t_a", now=0.6) == 3.0


def test_old_leads_are_forgotten_as_new_arrivals_come() -> None:
    """Entries older than `quiet` are dropped on the next arrival: memory follows the traffic."""
    g = gate()
    for n in range(50):
        g.delay(f"t_{n}", now=float(n) * 0.01)
    assert len(g) == 50
    g.delay("t_late", now=10.0)
    assert len(g) == 1


def test_the_memory_is_bounded() -> None:
    """Forged or many mailboxes within the quiet time keep at most max_entries; the evicted
    one only gets its next notification at once."""
    g = gate(max_entries=10)
    for n in range(25):
        g.delay(f"t_{n}", now=0.001 * n)
    assert len(g) == 10
    assert g.delay("t_0", now=0.1) == 0.0  # evicted: treated as quiet
    assert g.delay("t_24", now=0.1) == 3.0  # still remembered
