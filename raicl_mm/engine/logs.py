"""A quieter console: the pre-training dumps go to the log file only.

MMEngine's Runner logs, before the first iteration, the system environment
(~40 lines), the whole config (~300 lines) and the hook order (~80 lines).
They stay in the run's log file (``<work_dir>/<timestamp>/<timestamp>.log``);
the console gets one line saying where they are. Set the environment variable
``RAICL_CONSOLE_DUMPS=1`` (or ``log_level = 'DEBUG'``) to see them on the
console as before.

Two deprecation notices that MMEngine itself triggers on every run
(``"FileClient" will be deprecated``, ``"HardDiskBackend" is the alias of
"LocalBackend"``: MMEngine's own CheckpointHook uses them, nothing a user can
change) are dropped by message from the run's logger; everything else logged
at WARNING stays.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Optional

#: Set to 1 to keep the environment / config / hook-order dumps on the console.
CONSOLE_DUMPS_ENV = 'RAICL_CONSOLE_DUMPS'

#: Messages (regular expressions, matched at the start) written to the log
#: file only.
FILE_ONLY = (r'\s*-{20,}\s*System environment:', r'Config:\n',
             r'Hooks will be executed in the following order')

#: Known third-party notices dropped from the run's logger (console and file).
KNOWN_NOTICES = (r'"FileClient" will be deprecated in future',
                 r'"HardDiskBackend" is the alias of "LocalBackend"')


class FileOnly(logging.Filter):
    """Keeps the pre-training dumps off a console handler; the first one is
    replaced by a line naming the log file."""

    def __init__(self, handler: logging.Handler,
                 log_file: Optional[str] = None, who: str = ''):
        super().__init__('raicl_file_only')
        self.handler = handler
        self.log_file = log_file
        self.who = who
        self.told = False
        self._patterns = [re.compile(p) for p in FILE_ONLY]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if not any(p.match(msg) for p in self._patterns):
            return True
        if self.told:
            return False
        self.told = True
        # A new record in its place: the file handlers get the original.
        where = self.log_file or 'the log file'
        who = f'{self.who}: ' if self.who else ''
        note = logging.makeLogRecord(dict(
            record.__dict__, args=(),
            msg=(f'{who}environment, config and hook order: see {where} '
                 f'(or set {CONSOLE_DUMPS_ENV}=1)')))
        self.handler.handle(note)
        return False


class KnownNotices(logging.Filter):
    """Drops the known MMEngine deprecation notices (by message)."""

    def __init__(self):
        super().__init__('raicl_known_notices')
        self._patterns = [re.compile(p) for p in KNOWN_NOTICES]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(p.search(msg) for p in self._patterns)


def quiet_console(logger: logging.Logger, log_file: Optional[str] = None,
                  log_level='INFO', who: str = '') -> logging.Logger:
    """Install :class:`FileOnly` on the console handlers of ``logger`` and
    :class:`KnownNotices` on the logger (idempotent). Returns the logger."""
    if not any(isinstance(f, KnownNotices) for f in logger.filters):
        logger.addFilter(KnownNotices())
    wanted = os.environ.get(CONSOLE_DUMPS_ENV, '') not in ('', '0')
    if wanted or str(log_level).upper() == 'DEBUG':
        return logger
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) or not isinstance(
                handler, logging.StreamHandler):
            continue
        if not any(isinstance(f, FileOnly) for f in handler.filters):
            handler.addFilter(FileOnly(handler, log_file, who))
    return logger
