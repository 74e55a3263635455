"""A real SMTP server (aiosmtpd) in a thread, for the tests and the fault benchmark: it can be
stopped and started again on the same port (a mail server that goes down and comes back)."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


class _Handler:
    """aiosmtpd's handler hook: every message accepted is handed to the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.received(list(envelope.rcpt_tos), message_from_bytes(envelope.original_content))
        return "250 OK queued"


class SmtpSink:
    def __init__(self, port: int = 0) -> None:
        # aiosmtpd checks its server by connecting to the port it was given: pick a free one now.
        self.port = port or closed_port()
        self.messages: list[tuple[list[str], Message]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def received(self, recipients: list[str], message: Message) -> None:
        with self._lock:
            self.messages.append((recipients, message))

    def start(self) -> SmtpSink:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      server_hostname="floodlight-sink")
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port() -> int:
    """A local port nothing listens on (a mail server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
