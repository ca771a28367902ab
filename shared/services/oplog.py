"""The operations log's service steps: the admin API's query (`GET /api/log`) and the daily
prune of the days past LOG_RETENTION_DAYS. Writing happens where the calls are (the intake, the
Graph adapter), buffered by `adapters.oplog_tables.TableOpLog`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.compose import Services
from shared.core import oplog
from shared.errors import StorageError

log = logging.getLogger("calsync.oplog")


def run_log_query(svc: Services, params: Mapping[str, str]) -> dict[str, Any]:
    """The newest records matching ?tenant=&user=&direction=&since=&until=&top=, newest first;
    InputError (400) naming a bad parameter."""
    plan = oplog.plan_query(params, now=svc.now(), retention_days=svc.settings.log_retention_days)
    if svc.oplog is None:
        return {"value": [], "since": plan.since, "until": plan.until}
    svc.oplog.flush()  # what this instance buffered is visible at once
    return {"value": svc.oplog.query(plan), "since": plan.since, "until": plan.until}


def run_prune(svc: Services) -> int:
    """Delete the log's days past the retention; rows deleted (0, logged, if storage failed)."""
    if svc.oplog is None:
        return 0
    bound = oplog.prune_bound(svc.now(), svc.settings.log_retention_days)
    try:
        return svc.oplog.prune(bound)
    except StorageError as exc:
        log.warning("operations log: pruning failed (%s); retried tomorrow", exc.message)
        return 0
