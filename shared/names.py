"""Names of the storage tables and queues: one place, shared by triggers, services and infra."""

from __future__ import annotations

MAILBOXES_TABLE = "mailboxes"
SUBSCRIPTIONS_TABLE = "subscriptions"
CURSORS_TABLE = "cursors"
EVENTS_TABLE = "events"
CHANGES_TABLE = "changes"
LOG_TABLE = "log"
WRITES_TABLE = "writes"
TABLES = (
    MAILBOXES_TABLE,
    SUBSCRIPTIONS_TABLE,
    CURSORS_TABLE,
    EVENTS_TABLE,
    CHANGES_TABLE,
    LOG_TABLE,
    WRITES_TABLE,
)

SYNC_QUEUE = "sync-requests"
CHANGES_QUEUE = "calendar-changes"
WRITES_QUEUE = "calendar-writes"
QUEUES = (SYNC_QUEUE, CHANGES_QUEUE, WRITES_QUEUE)

# The app setting naming the storage connection, as the Functions host reads it.
STORAGE_CONNECTION = "AzureWebJobsStorage"
