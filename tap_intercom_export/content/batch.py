"""BATCH output: typed rows written straight into batch files, one BATCH message per file.

The SDK's own batcher (singer_sdk/batch.py, 0.54.9) takes records from the per-record RECORD
path and holds a whole batch in memory before it writes it (~0.5 GB at 100k rows). Here the rows
of each archive member go from the CSV reader to the file a block at a time, `batch_size` rows a
file at most, so memory stays flat whatever the window's size. Files follow the SDK's
`batch_config` shape (encoding jsonl or parquet, its compression; storage root and prefix),
which is what SDK-based loaders read back (`Sink.process_batch_files`):
https://sdk.meltano.com/en/latest/batch.html
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gzip
import typing as t
import uuid

from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.batchformat import check_batch_encoding

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

    from tap_intercom_export.jobs.rows import Block

# Batch files are read once by the loader and then thrown away: the fastest gzip level keeps
# the tap's CPU time near the RECORD path's, and the file stays a few times smaller than the text.
_GZIP_LEVEL = 1


class Beside:
    """Runs one call at a time in a thread of its own, beside the caller; the next waits for it.

    gzip and Parquet's encoding release the GIL: compressing a block while the next is typed
    uses the machine's second core, and one call in flight keeps memory flat.
    """

    def __init__(self) -> None:
        """No thread until the first call."""
        self._pool: cf.ThreadPoolExecutor | None = None
        self._last: cf.Future[t.Any] | None = None

    def call(self, fn: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> None:
        """Run `fn(*args, **kwargs)` once the previous call is done (its error raised here)."""
        self.wait()
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-files")
        self._last = self._pool.submit(fn, *args, **kwargs)

    def wait(self) -> None:
        """Wait for the call in flight; raise its error."""
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def shut(self) -> None:
        """Let the call in flight end, then the thread (the next call starts another)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._last = None


class BatchFiles:
    """Writes one stream's blocks into files of at most `batch_size` rows each."""

    #: File name ending, after `<prefix><tap>--<stream>-<uuid>-<n>`.
    suffix = ""
    #: Whether the blocks' date-times are to be microseconds since 1970 (else RFC 3339 text).
    times_us = False
    #: What reads a block's count and time columns in C (content/schemas.py `ColumnReader`).
    in_c: t.ClassVar[t.Any] = None
    #: Rows typed at once (0: jobs/rows.py BLOCK_ROWS).
    block_rows = 0

    def __init__(
        self,
        config: sdk.BatchConfig,
        tap_name: str,
        stream: Stream,
        deselected: tuple[str, ...] | None,
    ) -> None:
        """Rows of `stream` without what the catalog deselects, in files named as the SDK does.

        `deselected`: top-level names, or None to walk the selection mask. File names:
        `<prefix><tap>--<stream>-<uuid>-<n><suffix>`.
        """
        check_batch_encoding(
            {"format": config.encoding.format, "compression": config.encoding.compression}
        )
        self.config = config
        self.stream = stream
        self.deselected = deselected
        self.size = max(int(config.batch_size or 1), 1)
        self.sync_id = f"{tap_name}--{stream.name}-{uuid.uuid4()}"
        self.files = 0
        self.name = ""
        self.beside = Beside()

    def write(self, blocks: t.Iterable[Block]) -> t.Iterator[tuple[str, int]]:
        """Write `blocks` into as many files as they need; yield (URL, rows) as each is closed."""
        count = 0
        with contextlib.ExitStack() as self._files:
            for block in blocks:
                start = 0
                while start < block.size:
                    if not count:
                        self.files += 1
                        name = f"{self.config.storage.prefix or ''}{self.sync_id}-{self.files}"
                        self.name = name + self.suffix
                        raw = self._files.enter_context(self.config.storage.open(self.name, "wb"))
                        # Unwinding after an error: the write in flight ends before its file closes.
                        self._files.callback(self.beside.shut)
                        self.open(t.cast("t.BinaryIO", raw))
                    stop = min(block.size, start + self.size - count)
                    part = block if (start, stop) == (0, block.size) else block.slice(start, stop)
                    taken = self.append(part)
                    count += taken
                    start += taken
                    if count == self.size or taken < part.size:
                        yield self.finish(), count
                        count = 0
            if count:
                yield self.finish(), count

    def finish(self) -> str:
        """Close the file being written; its URL."""
        self.beside.wait()
        self.close()
        self._files.close()
        return self.config.storage.get_url(self.name)

    def open(self, raw: t.BinaryIO) -> None:
        """Start writing a file into `raw`."""
        raise NotImplementedError

    def append(self, part: Block) -> int:
        """Add the leading rows of `part` that fit this file (all, or at least one in a new file)."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (the storage closes `raw`)."""
        raise NotImplementedError


class JsonlFiles(BatchFiles):
    """JSON Lines, one record per line (gzip or plain), as the SDK's JSONLinesBatcher writes."""

    def __init__(self, *args: t.Any) -> None:
        """The base's files, through gzip if `compression` asks for it."""
        super().__init__(*args)
        self.gzip = self.config.encoding.compression == "gzip"
        self.suffix = ".json.gz" if self.gzip else ".json"
        self._out: t.BinaryIO | gzip.GzipFile | None = None

    @override
    def open(self, raw: t.BinaryIO) -> None:
        """Write into `raw`, through gzip if asked."""
        self._out = (
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=_GZIP_LEVEL) if self.gzip else raw
        )

    @override
    def append(self, part: Block) -> int:
        """Encode every row of `part` (what a RECORD would carry) into the file."""
        out = t.cast("t.BinaryIO", self._out)
        if self.deselected is not None:
            lines = part.encode_lines(sdk.writer_encoder, self.deselected)
        else:
            records = part.records()
            for record in records:
                sdk.drop_deselected(record, self.stream, None)
            lines = sdk.writer_encoder.encode_lines(records)
        self.beside.call(out.write, lines)
        return part.size

    @override
    def close(self) -> None:
        """End the gzip stream (the storage closes the file)."""
        if isinstance(self._out, gzip.GzipFile):
            self._out.close()
        self._out = None
