"""BATCH output: typed rows written straight into JSONL batch files, one BATCH message per file.

The SDK's own batcher (singer_sdk/batch.py, 0.54.9) takes records from the per-record RECORD
path and holds a whole batch in memory before it writes it (~0.5 GB at 100k rows). Here the rows
of each archive member go from the CSV reader to the file as they are typed, `batch_size` rows a
file at most, so memory stays flat whatever the window's size. Files follow the SDK's
`batch_config` shape (encoding jsonl, compression gzip or none; storage root and prefix), which
is what SDK-based loaders read back:
https://sdk.meltano.com/en/latest/batch.html
"""

from __future__ import annotations

import gzip
import itertools
import typing as t
import uuid

import msgspec.json

from tap_intercom_export import sdk
from tap_intercom_export.errors import ConfigError

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

#: Rows encoded per write: large enough to amortise the call, small enough to stay flat.
_CHUNK = 2000

# Batch files are read once by the loader and then thrown away: the fastest gzip level keeps
# the tap's CPU time near the RECORD path's, and the file stays a few times smaller than the text.
_GZIP_LEVEL = 1


def check_batch_config(config: sdk.BatchConfig) -> None:
    """Refuse encodings this tap does not write, with the setting to change."""
    if config.encoding.format != "jsonl":
        msg = (
            f"batch_config.encoding.format={config.encoding.format!r} is not supported: "
            "set it to 'jsonl' (the format SDK-based loaders such as target-postgres read)."
        )
        raise ValueError(msg)
    if config.encoding.compression not in ("gzip", "none", None):
        msg = (
            f"batch_config.encoding.compression={config.encoding.compression!r} is not "
            "supported: set it to 'gzip' or 'none'."
        )
        raise ValueError(msg)


class BatchFileWriter:
    """Writes one stream's rows into batch files of at most `batch_size` rows each."""

    def __init__(self, config: sdk.BatchConfig, tap_name: str, stream_name: str) -> None:
        """Name files like the SDK does: `<prefix><tap>--<stream>-<uuid>-<n>.json[.gz]`."""
        check_batch_config(config)
        self.config = config
        self.gzip = config.encoding.compression == "gzip"
        self.size = max(int(config.batch_size or 1), 1)
        self.sync_id = f"{tap_name}--{stream_name}-{uuid.uuid4()}"
        self.files = 0
        # Rows are JSON-ready (text, numbers, null, objects of text): no hook for other types.
        self.encoder = msgspec.json.Encoder()

    def write(self, rows: t.Iterable[dict[str, t.Any]]) -> t.Iterator[tuple[str, int]]:
        """Write `rows` into as many files as they need; yield (URL, rows) as each is closed."""
        rows = iter(rows)
        while True:
            head = next(rows, None)
            if head is None:
                return
            self.files += 1
            storage = self.config.storage
            name = f"{storage.prefix or ''}{self.sync_id}-{self.files}.json" + (
                ".gz" if self.gzip else ""
            )
            count = 0
            with storage.open(name, "wb") as raw:
                out = (
                    gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=_GZIP_LEVEL)
                    if self.gzip
                    else raw
                )
                try:
                    rest = itertools.islice(rows, self.size - 1)
                    chunk = [head]
                    while chunk:
                        out.write(self.encoder.encode_lines(chunk))
                        count += len(chunk)
                        chunk = list(itertools.islice(rest, _CHUNK))
                finally:
                    if out is not raw:
                        out.close()
            yield storage.get_url(name), count


def selected_only(
    rows: t.Iterable[dict[str, t.Any]], stream: Stream, deselected: tuple[str, ...] | None
) -> t.Iterator[dict[str, t.Any]]:
    """Rows without the properties the catalog deselects (what a RECORD would carry).

    `deselected` are top-level names to drop, or None to walk the stream's selection mask.
    """
    # The SDK writes a batch's manifest once per stream map without applying it to the files,
    # so a map that changes rows (e.g. hashes e-mails) would silently not happen.
    if sdk.maps_change_records(stream):
        msg = (
            f"Stream maps that change {stream.name} cannot be applied to BATCH files: "
            "remove batch_config or the stream map of this stream."
        )
        raise ConfigError(msg)
    for record in rows:
        sdk.drop_deselected(record, stream, deselected)
        yield record
