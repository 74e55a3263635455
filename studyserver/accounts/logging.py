"""Keep panel ids, the parameters kept with them and entry-link signatures out of the logs.

Panel ids identify people at the panel company. They arrive in the entry link's query string under
each study's own name (``?pid=``, ``?PROLIFIC_PID=``, ``?rid=``, ``?psid=`` …) with the parameters
a study keeps (``STUDY_ID``, ``SESSION_ID`` …) and the signature (``sig``), and in the demo's exit
pages. Django's development server logs every request line, and errors log the path.

Which names a study uses is a setting of that study, changeable at any time, and a log line is
written before anything knows the study: so the filter does not list them. Every query-string value
is replaced by ``[redacted]``, except those of the few parameters this site's own pages use that
carry nothing about a person (:data:`HARMLESS_PARAMETERS`).
"""

from __future__ import annotations

import logging
import re

# Query parameters whose values stay readable in the logs: the language switch and the admin's own
# navigation (list page, ordering, a study filter by slug or id). Anything else is redacted.
HARMLESS_PARAMETERS = frozenset({"lang", "p", "o", "study", "from", "format"})
REDACTED = "[redacted]"
# A query string: from "?" to the end of the URL (a space, a quote, or the end of the text).
_QUERY = re.compile(r"\?(?P<query>[^\s\"'<>]+)")
_PAIR = re.compile(r"(?P<key>(?:^|(?<=[&;]))(?P<name>[^=&;]*)=)(?P<value>[^&;]*)")


def _redact_query(match: re.Match[str]) -> str:
    def pair(part: re.Match[str]) -> str:
        if part["name"] in HARMLESS_PARAMETERS or not part["value"]:
            return part[0]
        return f"{part['key']}{REDACTED}"

    return "?" + _PAIR.sub(pair, match["query"])


def redact(text: str) -> str:
    """``text`` with every query-string value but the harmless ones replaced by ``[redacted]``."""
    return _QUERY.sub(_redact_query, text) if "?" in text else text


class RedactPanelIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
