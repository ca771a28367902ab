"""What the EWS tests share: leaving the session's tables and sockets as they were found."""

from __future__ import annotations

import contextlib

from shared.compose import Services
from shared.errors import NotFoundError
from shared.services import mailboxes


def retire(svc: Services, tenant: str, smtp: str) -> None:
    """Remove the test's mailbox (so no other test's poll timer finds it due) and close the
    EWS sessions and Graph client the test's services opened."""
    with contextlib.suppress(NotFoundError):
        mailboxes.remove(svc, tenant, smtp, purge=True)
    if svc.ews is not None:
        svc.ews.close()
    svc.graph.close()
