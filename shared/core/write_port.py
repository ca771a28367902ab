"""Pure: the port the write service calls, one implementation per provider (Graph:
adapters/graph_writes, Exchange Server: adapters/ews_writes).

Rule: every method is one provider operation in the write's terms, and answers in Graph's
event shape (what calendarView/delta gives, so the mirror takes it as a round would); the
provider's refusals come as the project's errors: WriteConflict (the changeKey is stale),
NotFoundError (no such event), InputError (the provider will not take the body), Throttled
(retry after its delay), the transient rest. What is retried, found again or mirrored is
decided once, in services.writes and services.write_mirror, for both providers.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.core.model import Window
from shared.core.state import MailboxRecord
from shared.core.writes import WriteRecord


class CalendarWriter(Protocol):
    #: Whether the mirror holds series masters (Graph's) that a write of a series refreshes.
    mirrors_masters: bool

    def create(self, mailbox: MailboxRecord, record: WriteRecord) -> dict[str, Any]:
        """The event (a series: its master) made from the write's body, with the mailbox's
        write options and the origin marker."""
        ...

    def update(
        self, mailbox: MailboxRecord, record: WriteRecord, change_key: str
    ) -> dict[str, Any]:
        """The event after the update; `change_key` "" sends none (no conflict check)."""
        ...

    def delete(self, mailbox: MailboxRecord, event_id: str) -> None: ...

    def cancel(self, mailbox: MailboxRecord, event_id: str, comment: str) -> None: ...

    def find_origin(self, mailbox: MailboxRecord, origin: str) -> dict[str, Any] | None:
        """The event whose origin marker is `origin` (an earlier try of a create), or None."""
        ...

    def read(self, mailbox: MailboxRecord, event_id: str) -> dict[str, Any]:
        """The event as it is now, with its origin marker when it has one."""
        ...

    def instances(
        self, mailbox: MailboxRecord, master_id: str, window: Window
    ) -> list[dict[str, Any]]:
        """The series' occurrences and exceptions in the window."""
        ...
