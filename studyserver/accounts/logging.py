"""Keep panel ids (and entry-link signatures) out of the logs the project writes.

Panel ids identify people at the panel company; they arrive in the entry link's query string
(``?pid=...&sig=...``) and in the demo's exit pages. Django's development server logs every
request line, and errors log the path; this filter replaces those values before any handler
writes them.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = ("pid", "sig")
_NAMES = "|".join(SECRET_PARAMETERS)
_PATTERN = re.compile(rf"(?P<key>(?:^|[?&;])(?:{_NAMES})=)[^&;\s\"']*")


def redact(text: str) -> str:
    return _PATTERN.sub(r"\g<key>[redacted]", text)


class RedactPanelIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
