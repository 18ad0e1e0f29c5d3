"""The tap's stdout: RECORDs buffered by the tap, written out at each STATE (see __init__.py)."""

from __future__ import annotations

import atexit
import contextlib
import sys
import typing as t
import weakref
from datetime import datetime, timezone

import msgspec.json
from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook
from singer_sdk.helpers._state import StateWriter
from singer_sdk.singerlib.messages import SingerMessageType
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import TapState
    from singer_sdk.singerlib import RecordMessage
    from singer_sdk.singerlib.encoding.simple import Message


# -- output ------------------------------------------------------------------------------------

#: msgspec's encoder as MsgSpecWriter configures it: what the tap's loop encodes records with.
writer_encoder = msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")

# RECORDs are written once this much output is waiting (or at the next STATE, SCHEMA, BATCH).
_BUFFER_BYTES = 1 << 18

_WRITERS: weakref.WeakSet[BufferedMsgSpecWriter] = weakref.WeakSet()


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Holds RECORDs in a buffer of the tap's own; writes it out at every other message.

    MsgSpecWriter flushes after every message: one write syscall (and, through a pipe, one
    wake-up of the target) per record, and with PYTHONUNBUFFERED (which some runners set)
    stdout has no buffer at all. Records only matter to a target once the STATE that covers
    them arrives, and that STATE goes out through the same buffer after them: writing the
    buffer there (and at SCHEMA, BATCH, at every point the SDK would write a STATE, and at
    exit) keeps the order and loses nothing a kill would not lose anyway.
    """

    def __init__(self) -> None:
        """An empty buffer, written out at exit if anything is left; no record written yet."""
        super().__init__()
        self._buffer = bytearray()
        self._out: t.TextIO | None = None
        self._unsynced = False
        #: RECORDs written per stream, for the run's summary line.
        self.records: dict[str, int] = {}
        _WRITERS.add(self)

    @override
    def write_message(self, message: Message) -> None:
        """Buffer one message; write the buffer out unless it is a RECORD."""
        # Relies on: MsgSpecWriter.format_message returning one JSON line (newline included)
        # as bytes, valid until the next call.
        self._hold(self.format_message(message))
        if message.type != SingerMessageType.RECORD:
            self.flush()
            return
        stream = t.cast("RecordMessage", message).stream
        self.records[stream] = self.records.get(stream, 0) + 1
        if len(self._buffer) >= _BUFFER_BYTES:
            self.flush(sync=False)

    def write_records(self, stream: str, lines: bytes, version: int | None) -> None:
        """Buffer one RECORD per line of `lines` (encoded records), as RecordMessage would write."""
        # The envelope RecordMessage.to_dict gives, in its key order, around each encoded
        # record; JSON text never holds a raw newline, so each b"\n" ends one record.
        head = b'{"type":"RECORD","stream":' + writer_encoder.encode(stream) + b',"record":'
        tail = b',"version":' + writer_encoder.encode(version) if version is not None else b""
        tail += b',"time_extracted":' + writer_encoder.encode(datetime.now(timezone.utc)) + b"}\n"
        body = lines.replace(b"\n", tail + head)  # one copy; the last `head` is cut below
        self.records[stream] = self.records.get(stream, 0) + lines.count(b"\n")
        self._hold(head)
        with memoryview(body) as view:
            self._buffer += view[: len(body) - len(head)]
        if len(self._buffer) >= _BUFFER_BYTES:
            self.flush(sync=False)

    def _hold(self, data: bytes | bytearray) -> None:
        if not self._buffer:
            # Where these bytes are meant to go, even if stdout is swapped before they are out.
            self._out = sys.stdout
        self._buffer += data

    def flush(self, *, sync: bool = True) -> None:
        """Write what is buffered to stdout (and, `sync`, flush stdout's own buffer)."""
        out = self._out or sys.stdout
        if self._buffer:
            out.flush()  # anything written to the text layer first goes first
            with memoryview(self._buffer) as view:
                done = 0
                while done < len(view):
                    # An unbuffered stdout (FileIO) may take part of a large write.
                    done += out.buffer.write(view[done:]) or 0
            self._buffer.clear()
            self._unsynced = True
        if sync and self._unsynced:
            out.buffer.flush()
            self._unsynced = False


class FlushingStateWriter(StateWriter):
    """The SDK's STATE writer, which also writes out buffered RECORDs where it skips a STATE."""

    def __init__(self, message_writer: BufferedMsgSpecWriter) -> None:
        """Write STATEs through `message_writer`."""
        super().__init__(message_writer)
        self.output = message_writer

    @override
    def write_state(self, state: TapState) -> None:
        """Write the state if it changed; write out the records before it in any case."""
        # Relies on: StateWriter.write_state skipping a STATE equal to the last one written: the
        # records buffered since would otherwise wait (the end of a sync whose bookmark did not
        # move, a dry run stopped at its record limit).
        super().write_state(state)
        self.output.flush()


def own_output(tap: Tap) -> None:
    """Make the tap's STATE points write out the records buffered before them."""
    # Relies on: Tap keeping the StateWriter every STATE goes through in `_state_writer`
    # (streams reach it as `tap.state_writer`), built on the tap's message writer.
    writer = tap.message_writer
    if isinstance(writer, BufferedMsgSpecWriter):
        tap._state_writer = FlushingStateWriter(writer)  # noqa: SLF001


@atexit.register
def _flush_at_exit() -> None:
    for writer in list(_WRITERS):
        with contextlib.suppress(OSError, ValueError):
            writer.flush()
