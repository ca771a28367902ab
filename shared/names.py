"""Names of the storage tables and queues: one place, shared by triggers, services and infra."""

from __future__ import annotations

MAILBOXES_TABLE = "mailboxes"
SUBSCRIPTIONS_TABLE = "subscriptions"
CURSORS_TABLE = "cursors"
EVENTS_TABLE = "events"
CHANGES_TABLE = "changes"
LOG_TABLE = "log"
ICALUIDS_TABLE = "icaluids"  # the iCalUId index (shared.core.icaluid)
WEBHOOKS_TABLE = "webhooks"  # the change feed's subscribers
DELIVERIES_TABLE = "deliveries"  # one delivery cursor per (subscriber, mailbox)
DEADLETTERS_TABLE = "deadletters"  # changes whose delivery gave up
WRITES_TABLE = "writes"
PACING_TABLE = "pacing"  # subscription-write budget per tenant and slot, shared by all hosts
TABLES = (
    MAILBOXES_TABLE,
    SUBSCRIPTIONS_TABLE,
    CURSORS_TABLE,
    EVENTS_TABLE,
    CHANGES_TABLE,
    LOG_TABLE,
    ICALUIDS_TABLE,
    WEBHOOKS_TABLE,
    DELIVERIES_TABLE,
    DEADLETTERS_TABLE,
    WRITES_TABLE,
    PACING_TABLE,
)

SYNC_QUEUE = "sync-requests"
CHANGES_QUEUE = "calendar-changes"
DELIVERY_QUEUE = "webhook-deliveries"  # (subscriber, mailbox) work items
WRITES_QUEUE = "calendar-writes"  # writes waiting for a retry (Retry-After)
QUEUES = (SYNC_QUEUE, CHANGES_QUEUE, DELIVERY_QUEUE, WRITES_QUEUE)

# The app setting naming the storage connection, as the Functions host reads it.
STORAGE_CONNECTION = "AzureWebJobsStorage"
