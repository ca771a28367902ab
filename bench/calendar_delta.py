"""The simulator's calendar model: a full one-year calendarView/delta of 10,000 events (pure, no
HTTP), so that the simulator never becomes the bottleneck of the sync benchmarks.

    .venv/bin/python bench/calendar_delta.py [--events 10000] [--page-size 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphsim.model.calendar.delta import DeltaEngine
from graphsim.model.calendar.store import CalendarStore


def _store(count: int) -> tuple[CalendarStore, datetime]:
    now = datetime(2026, 11, 21, tzinfo=UTC)
    store = CalendarStore("bench-user", seed=1)
    for n in range(count):
        start = now + timedelta(hours=n % (24 * 365))
        end = start + timedelta(minutes=30)
        fmt = "%Y-%m-%dT%H:%M:%S"
        store.create(
            {
                "subject": f"Event {n}",
                "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
                "end": {"dateTime": end.strftime(fmt), "timeZone": "UTC"},
            },
            now,
        )
    return store, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    store, now = _store(args.events)
    samples, items = [], 0
    for _ in range(args.runs):
        engine = DeltaEngine(store, rng=random.Random(1))
        started = time.perf_counter()
        page = engine.start(
            now,
            now + timedelta(days=366),
            now,
            page_size=args.page_size,
            time_zone=None,
            body_type="html",
        )
        items = len(page.items)
        while page.skiptoken:
            page = engine.next_page(page.skiptoken, now)
            items += len(page.items)
        samples.append(time.perf_counter() - started)
    print(
        f"full delta of {items} events, page size {args.page_size}: median "
        f"{statistics.median(samples):.2f} s over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
