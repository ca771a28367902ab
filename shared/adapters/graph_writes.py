"""Graph behind the write port (core.write_port): each operation one Graph request of
core.graph, sent through the GraphClient, its answer decoded as delta's events are.

Rule: `transactionId` is the write's id (Graph refuses a repeated POST: 409, resolved by the
service through `find_origin`), an update carries the changeKey as If-Match (412 is
WriteConflict), reads expand the origin marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.core import writes as core
from shared.core.graph import (
    event_cancel,
    event_create,
    event_delete,
    event_get,
    event_instances,
    event_update,
    events_by_origin,
)
from shared.core.graph_types import decode_event
from shared.core.model import Window
from shared.core.paging import iter_events
from shared.core.state import MailboxRecord
from shared.core.writes import ORIGIN_PROPERTY, WriteRecord

if TYPE_CHECKING:
    from shared.adapters.graph_httpx import GraphClient


class GraphWriter:
    """Writes of a Graph mailbox."""

    mirrors_masters = True

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    def create(self, mailbox: MailboxRecord, record: WriteRecord) -> dict[str, Any]:
        body = core.plan_graph_body(record.request, mailbox.options, record.write_id)
        request = event_create(
            mailbox.key,
            body,
            transaction_id=record.write_id,
            body_type=mailbox.options.body_type,
            calendar_id=mailbox.calendar_id,
        )
        return decode_event(self._graph.send(request))

    def update(
        self, mailbox: MailboxRecord, record: WriteRecord, change_key: str
    ) -> dict[str, Any]:
        body = core.plan_graph_body(record.request, mailbox.options, record.write_id)
        request = event_update(
            mailbox.key,
            record.request.event_id,
            body,
            change_key=change_key,
            body_type=mailbox.options.body_type,
        )
        return decode_event(self._graph.send(request))

    def delete(self, mailbox: MailboxRecord, event_id: str) -> None:
        self._graph.send(event_delete(mailbox.key, event_id))

    def cancel(self, mailbox: MailboxRecord, event_id: str, comment: str) -> None:
        self._graph.send(event_cancel(mailbox.key, event_id, comment))

    def find_origin(self, mailbox: MailboxRecord, origin: str) -> dict[str, Any] | None:
        request = events_by_origin(
            mailbox.key,
            origin_property=ORIGIN_PROPERTY,
            value=origin,
            body_type=mailbox.options.body_type,
            calendar_id=mailbox.calendar_id,
        )
        return next(iter_events(request, self._graph.send), None)

    def read(self, mailbox: MailboxRecord, event_id: str) -> dict[str, Any]:
        request = event_get(
            mailbox.key,
            event_id,
            origin_property=ORIGIN_PROPERTY,
            body_type=mailbox.options.body_type,
        )
        return decode_event(self._graph.send(request))

    def instances(
        self, mailbox: MailboxRecord, master_id: str, window: Window
    ) -> list[dict[str, Any]]:
        request = event_instances(
            mailbox.key, master_id, window, body_type=mailbox.options.body_type
        )
        return list(iter_events(request, self._graph.send))
