"""The simulator's calendar model: one mailbox's default calendar, recurrence, Prefer
rendering, calendarView/delta sync state and getSchedule. Pure: no sockets, no clock
(every time comes in as an aware `now`), so the HTTP server stays a thin adapter."""

from graphsim.model.calendar.delta import DeltaEngine, DeltaPage
from graphsim.model.calendar.render import render_event
from graphsim.model.calendar.schedule import get_schedule
from graphsim.model.calendar.store import CalendarStore
from graphsim.model.calendar.timezones import to_zone

__all__ = ["CalendarStore", "DeltaEngine", "DeltaPage", "get_schedule", "render_event", "to_zone"]
