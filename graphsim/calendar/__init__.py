"""The simulator's calendar model: one mailbox's default calendar, recurrence, Prefer
rendering, calendarView/delta sync state and getSchedule. Pure: no sockets, no clock
(every time comes in as an aware `now`), so the HTTP server stays a thin adapter."""

from graphsim.calendar.delta import DeltaEngine, DeltaPage
from graphsim.calendar.render import render_event
from graphsim.calendar.schedule import get_schedule
from graphsim.calendar.store import CalendarStore
from graphsim.calendar.timezones import to_zone

__all__ = ["CalendarStore", "DeltaEngine", "DeltaPage", "get_schedule", "render_event", "to_zone"]
