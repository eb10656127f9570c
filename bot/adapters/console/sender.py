"""The console's ``PlatformSender``: messages the system sends on its own, printed on the terminal.

Reminders and digests for console users (and anything queued for the ``console`` platform) are
written to the worker's output, with the buttons as the commands they would run and a chart as
the path of its PNG file, so a console-only install still shows what Slack or Telegram would get.
A terminal cannot change what it printed: an edit (``replace``) is printed as a new message
marked "(updated) ", without its chart, and keeps the id of the message it updates.
"""

from __future__ import annotations

import itertools
import sys
import threading
from pathlib import Path
from typing import TextIO

from bot.adapters.console.render import button_hint, render_text
from bot.delivery import OutboundMessage


class ConsoleSender:
    platform = "console"

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    async def send(self, message: OutboundMessage) -> str:
        kind = message.metadata.get("kind", "message")
        edit = "(updated) " if message.replace else ""
        lines = [f"{edit}──── {kind} for {message.conversation} ────"]
        if message.reply is not None:
            lines.append(render_text(message.reply))
        elif message.formatted_text:
            lines.append(message.formatted_text)
        if message.buttons:
            lines.append("Actions: " + " ".join(button_hint(b) for b in message.buttons))
        if message.image is not None and not message.replace:
            note = "" if Path(message.image.path).exists() else " (file not found on this machine)"
            lines.append(f"{message.image.title}: {message.image.path}{note}")
        with self._lock:
            number = next(self._ids)
            self.stream.write("\n".join(lines) + "\n\n")
            self.stream.flush()
        return message.replace or f"console-{number}"
