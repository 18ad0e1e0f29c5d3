"""What `batch_config` may ask for: the formats and compressions this tap writes, and Parquet's limits.

The message_* streams write their own batch files (content/batch.py, content/parquet.py); the
other streams go through the SDK's batcher (singer_sdk/batch.py), Parquet included. Either way,
a Parquet column has one type for all its rows: a stream with a property of free-form JSON
values (a contact event's metadata) cannot go to Parquet, and writes JSON Lines (gzip) files
instead. Each BATCH message names its own files' encoding, and loaders read each file by it
(singer_sdk/sinks/core.py `process_batch_files`), so one run can mix the two.
"""

from __future__ import annotations

import importlib.util
import typing as t

from tap_intercom_export.errors import ConfigError

#: `batch_config.encoding.format` values this tap writes, and the compressions each takes (the
#: SDK's settings schema allows gzip and none). Parquet compresses inside the file: gzip, none
#: (uncompressed) or, unset, snappy (pyarrow's default, as with the SDK's own batcher).
BATCH_FORMATS: dict[str, tuple[str | None, ...]] = {
    "jsonl": ("gzip", "none", None),
    "parquet": ("gzip", "none", None),
}
PARQUET_INSTALL = "pip install 'tap-intercom-export[parquet]'"


def check_batch_encoding(encoding: t.Mapping[str, t.Any]) -> None:
    """Refuse a `batch_config.encoding` this tap cannot write, naming what to change."""
    fmt, compression = encoding.get("format"), encoding.get("compression")
    if fmt not in BATCH_FORMATS:
        msg = (
            f"batch_config.encoding.format={fmt!r} is not supported: set it to 'jsonl' or "
            "'parquet' (the formats SDK-based loaders such as target-postgres read)."
        )
        raise ConfigError(msg)
    allowed = BATCH_FORMATS[fmt]
    if compression not in allowed:
        names = ", ".join(repr(c) for c in allowed if c)
        msg = (
            f"batch_config.encoding.compression={compression!r} is not supported with format "
            f"{fmt!r}: set it to one of {names}."
        )
        raise ConfigError(msg)
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        msg = (
            "batch_config.encoding.format='parquet' needs pyarrow, which is not installed: "
            f"{PARQUET_INSTALL} (or set the format to 'jsonl')."
        )
        raise ConfigError(msg)


#: What a Parquet column holds, by the JSON schema of its property (see `parquet_kind`).
TIMESTAMP, TEXT, INTEGER, NUMBER, BOOLEAN, TEXT_OBJECT = (
    "timestamp", "text", "integer", "number", "boolean", "text object"
)  # fmt: skip
_SCALAR_KINDS = {"string": TEXT, "integer": INTEGER, "number": NUMBER, "boolean": BOOLEAN}


def parquet_kind(schema: dict[str, t.Any]) -> str | None:
    """What Parquet column a property with this JSON schema becomes (None: none can hold it).

    Parquet gives a column one type for all its rows: an object of text values (a struct per
    file, content/parquet.py) fits, an object of any JSON values (a contact event's metadata)
    or an array does not.
    """
    types = schema.get("type", [])
    kind = next((k for k in ([types] if isinstance(types, str) else types) if k != "null"), None)
    if kind == "string" and schema.get("format") == "date-time":
        return TIMESTAMP
    if kind in _SCALAR_KINDS:
        return _SCALAR_KINDS[kind]
    values = schema.get("additionalProperties")
    if kind == "object" and not schema.get("properties") and isinstance(values, dict):
        value_types = values.get("type", [])
        if set([value_types] if isinstance(value_types, str) else value_types) <= {
            "string",
            "null",
        }:
            return TEXT_OBJECT
    return None


#: The encoding of a stream's batch files when Parquet cannot hold it.
PARQUET_FALLBACK = {"format": "jsonl", "compression": "gzip"}


def parquet_misfit(schema: dict[str, t.Any]) -> str | None:
    """The first property of a stream's schema that no Parquet column can hold, if any."""
    return next((n for n, p in schema["properties"].items() if parquet_kind(p) is None), None)
