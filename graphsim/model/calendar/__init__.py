"""One mailbox's default calendar: the store (`store`), recurrence (`recurrence`, `series`),
Prefer rendering (`render`), calendarView/delta sync state (`delta`) and getSchedule
(`schedule`). Pure: no sockets, no clock (every time comes in as an aware `now`), so the API
handlers stay a thin adapter. Import the modules themselves; this package re-exports nothing,
so importing one module never pulls in the others."""
