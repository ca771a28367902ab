"""Defence in depth for secrets in logs: every secret value read is registered here, and a logging
filter on the root handlers replaces any occurrence with '***'. The code never logs secret values
on purpose; this catches a library that would (a header dump, an exception repr)."""

from __future__ import annotations

import logging
import threading

_MIN_LEN = 6  # shorter values would redact ordinary words; no real credential is that short


class Redactor(logging.Filter):
    """A logging filter that masks every registered secret value in a record's final message."""

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        if len(value) >= _MIN_LEN:
            with self._lock:
                self._values.add(value)

    def mask(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.mask(exc_text)
        return True


REDACTOR = Redactor()


def install(logger: logging.Logger | None = None) -> None:
    """Attach the redactor to every handler of `logger` (default: root), once each."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
