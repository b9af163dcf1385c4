"""dom0's log file as the monitor and the plugin write it: UTF-8 whatever the locale.

Under xapi (only ``PATH`` in the environment) dom0's Python 3.6 is in the ASCII C locale, where a
file opened without an encoding refuses any non-ASCII line, and where argv and file names come
as lone surrogates. A line is therefore written in UTF-8, with a lone surrogate shown as
``\\udcc3``: a line is never lost for its characters.
"""

import logging
import logging.handlers

LINE_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"


class Utf8Formatter(logging.Formatter):
    """A formatter whose lines always encode as UTF-8 (lone surrogates made visible)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).encode("utf-8", "backslashreplace").decode("utf-8")


def file_handler(path: str, fmt: str = LINE_FORMAT, watched: bool = True) -> logging.Handler:
    """Appends UTF-8 lines to ``path``; ``watched`` reopens it after logrotate moved it away."""
    if watched:
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")  # type: logging.Handler
    else:
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(Utf8Formatter(fmt))
    return handler
