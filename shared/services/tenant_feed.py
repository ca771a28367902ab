"""The tenant's change feed: `GET /api/tenants/{tenant}/changes?after=&limit=`, every mailbox of
the tenant behind one opaque cursor (core.tenant_feed's rules), read from what the `changes`
table holds (the relay is not involved).

Cost per page: one partition range read per mailbox of the tenant (each of its share of the
page: `core.tenant_feed.run_size` + 1 rows), run side by side on a small pool of threads, plus
one query listing the mailboxes. An idle poll costs the same reads, each empty.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.compose import Services
from shared.core import tenant_feed as rules
from shared.core.feed import ChangeEvent
from shared.core.model import MailboxKey
from shared.errors import CalsyncError, NotFoundError

READ_THREADS = 8  # within the storage clients' connection pool (10)


@functools.cache
def _read_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="calsync-tenantfeed")


def _tenant(svc: Services, tenant: str) -> str:
    known = {t.lower(): t for t in svc.settings.tenant_ids}
    found = known.get(tenant.strip().lower())
    if found is None:
        raise NotFoundError(f"tenant {tenant[:64]!r} is not one of TENANT_IDS")
    return found


def read(svc: Services, tenant: str, after: str | None, limit: str | None) -> dict[str, Any]:
    """A page of the tenant's changes after the cursor `after` (the `next` of an earlier page;
    none: every mailbox from its oldest kept change); `next` is always given: poll with it."""
    tenant_id = _tenant(svc, tenant)
    count = rules.parse_limit(limit)
    held = rules.decode_cursor(after, tenant_id) if after is not None else {}
    if svc.changes is None:
        raise CalsyncError("the change feed is not configured for these services")
    changes = svc.changes
    # Every enrolled calendar is a mailbox of the feed, named by its label (user or user:handle).
    users = sorted({r.key.label for r in svc.state.list_mailboxes(tenant_id)})
    positions = {u: held.get(rules.mailbox_digest(u), -1) for u in users}
    size = rules.run_size(count, len(users)) + 1  # the row at the position comes back too

    def fetch(user: str) -> tuple[str, list[ChangeEvent], bool]:
        position = positions[user]
        rows = changes.read_after(MailboxKey.from_label(tenant_id, user), position - 1, size)
        run, _ = rules.run_after(rows, position)
        return user, run, len(rows) >= size

    runs: dict[str, list[ChangeEvent]] = {}
    truncated = set()
    for user, run, cut in _read_pool().map(fetch, users):
        runs[user] = run
        if cut:
            truncated.add(user)
    page = rules.plan_page(runs, positions, count, truncated=frozenset(truncated))
    kept = {u: s for u, s in page.positions.items() if u in positions}
    return {
        "tenantId": tenant_id,
        "count": len(page.changes),
        "value": [change.to_json() for change in page.changes],
        "next": rules.encode_cursor(tenant_id, kept),
        "more": page.more,
    }
