"""Singer message writer: msgspec encoding, stdout flushed at STATE rather than at every record."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.messages import SingerMessageType

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Writes RECORDs into stdout's buffer and flushes on every other message (STATE, SCHEMA...)."""

    def write_message(self, message: Message) -> None:
        """Write one message; flush unless it is a RECORD."""
        # MsgSpecWriter flushes after every message: one write syscall (and, through a pipe, one
        # wake-up of the target) per record. Records only matter to a target once the STATE that
        # covers them arrives, and that STATE goes through the same buffer after them, so
        # flushing there keeps the order and loses nothing a crash would not lose anyway.
        # https://github.com/meltano/sdk/blob/v0.54.9/singer_sdk/contrib/msgspec.py
        out = sys.stdout.buffer
        out.write(self.format_message(message))
        if message.type != SingerMessageType.RECORD:
            out.flush()
