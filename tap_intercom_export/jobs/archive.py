"""Read Intercom's export download: sniff the container, stream each CSV member, read rows.

Intercom documents the download as "a gzipped CSV" and also as "a gzipped folder containing
multiple CSVs, one for each message statistic"; real exports arrive as a zip of
`<kind>_YYYYMMDD-HHMMSS.csv` files. Everything here streams from the file on disk: no member is
ever held whole in memory.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import re
import sys
import tarfile
import typing as t
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tap_intercom_export.errors import ArchiveError

if t.TYPE_CHECKING:
    import logging

_CHUNK = 1 << 20

# Intercom's survey answers and free-text replies can be long; csv's default 128 KiB field
# limit would abort the whole window on one long answer.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_STAMP = re.compile(r"[_-]\d{8}[_-]?\d{6}$")


def member_stem(name: str) -> str | None:
    """`opens_20240101-000000.csv` -> `opens`; None for a file that is not a CSV."""
    stem = Path(name).name
    lower = stem.lower()
    for ext in (".csv.gz", ".csv", ".gz"):
        if lower.endswith(ext):
            stem = stem[: -len(ext)]
            break
    else:
        return None
    return _STAMP.sub("", stem).lower()


class Namer(t.Protocol):
    """How a source names the kind of each CSV member of its archives."""

    def kind_of_member(self, name: str) -> str | None:
        """The kind of a member from its file name (None: not a CSV, skipped)."""

    def kind_from_header(self, header: list[str]) -> str:
        """The kind of a lone CSV (no file name) from its header."""


class StemNamer:
    """Default naming: a member's kind is its file name without stamp and extension."""

    def kind_of_member(self, name: str) -> str | None:
        """`data_20240101-000000.csv` -> `data`."""
        return member_stem(name)

    def kind_from_header(self, header: list[str]) -> str:  # noqa: ARG002 - one kind only
        """A lone CSV is the export's only file."""
        return "data"


@dataclass
class Member:
    """One CSV file inside the archive."""

    name: str
    kind: str
    newlines: int = 0
    size: int = 0


@dataclass
class Archive:
    """A downloaded export on disk, readable member by member."""

    path: Path
    container: str = ""
    members: list[Member] = field(default_factory=list)
    namer: Namer = field(default_factory=StemNamer)

    @classmethod
    def open(cls, path: Path, namer: Namer | None = None) -> Archive:
        """Sniff the container and list its CSV members (reads every byte once: CRCs checked)."""
        archive = cls(path=Path(path), namer=namer or StemNamer())
        archive.container = sniff(archive.path)
        archive.members = list(archive._scan())
        return archive

    def _scan(self) -> t.Iterator[Member]:
        for raw_name, raw_stream in self._iter_raw():
            name, stream = raw_name, raw_stream
            if name is None:  # a lone CSV: its kind is read from its header
                with stream:
                    first = stream.readline()
                header = next(csv.reader([first.decode("utf-8-sig", "replace")]), [])
                name = f"{self.namer.kind_from_header(header)}.csv"
                _, stream = next(self._iter_raw())
            kind = self.namer.kind_of_member(name)
            if kind is None:
                stream.close()
                continue
            member = Member(name=name, kind=kind)
            with stream:
                try:
                    while chunk := stream.read(_CHUNK):
                        member.size += len(chunk)
                        member.newlines += chunk.count(b"\n")
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, tarfile.TarError) as exc:
                    msg = f"member {name} is corrupt or truncated ({exc})"
                    raise ArchiveError(msg) from exc
            yield member

    def _iter_raw(self) -> t.Generator[tuple[str | None, t.BinaryIO], None, None]:
        try:
            if self.container == "zip":
                with zipfile.ZipFile(self.path) as zf:
                    for zinfo in zf.infolist():
                        if not zinfo.is_dir():
                            yield zinfo.filename, t.cast("t.BinaryIO", zf.open(zinfo))
            elif self.container in ("tar", "tar.gz"):
                with tarfile.open(self.path, mode="r:*") as tf:
                    for tinfo in tf:
                        if tinfo.isfile():
                            member = tf.extractfile(tinfo)
                            if member is not None:
                                yield tinfo.name, t.cast("t.BinaryIO", member)
            elif self.container == "csv.gz":
                # The consumer closes each stream it is handed (see _scan and open_member).
                yield None, t.cast("t.BinaryIO", gzip.open(self.path, "rb"))  # noqa: SIM115
            else:
                yield None, self.path.open("rb")
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as exc:
            msg = f"the {self.container} archive cannot be read ({exc})"
            raise ArchiveError(msg) from exc

    @contextlib.contextmanager
    def open_member(self, member: Member) -> t.Iterator[t.BinaryIO]:
        """Open one member for streaming reads, closing the archive afterwards."""
        raw = self._iter_raw()
        try:
            for name, stream in raw:
                if name is None or name == member.name:
                    with stream:
                        yield stream
                    return
                stream.close()
        finally:
            raw.close()
        msg = f"member {member.name} vanished from {self.path.name}"
        raise ArchiveError(msg)

    def kinds(self) -> dict[str, list[Member]]:
        """Members grouped by file kind, in archive order."""
        out: dict[str, list[Member]] = {}
        for member in self.members:
            out.setdefault(member.kind, []).append(member)
        return out


def sniff(path: Path) -> str:
    """Tell the container of a download from its first bytes, not its name."""
    with path.open("rb") as fh:
        head = fh.read(512)
    if not head:
        # A completed job (not `no_data`) always has at least a header: an empty body is a
        # download that broke before its first byte.
        msg = "the download is empty (0 bytes)"
        raise ArchiveError(msg)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as gz:
                block = gz.read(512)
        except (OSError, EOFError, zlib.error) as exc:
            msg = f"the gzip download cannot be read ({exc})"
            raise ArchiveError(msg) from exc
        return "tar.gz" if _is_tar_block(block) else "csv.gz"
    if _is_tar_block(head):
        return "tar"
    if b"\x00" in head:
        msg = "the download is neither a zip, a tar, a gzip nor a CSV file"
        raise ArchiveError(msg)
    return "csv"


# POSIX tar headers carry the magic "ustar" at offset 257 of the first 512-byte block.
_USTAR_OFFSET = 257
_USTAR = b"ustar"


def _is_tar_block(block: bytes) -> bool:
    end = _USTAR_OFFSET + len(_USTAR)
    return len(block) >= end and block[_USTAR_OFFSET:end] == _USTAR


class DecodeCounter:
    """Counts bytes that were not valid UTF-8 (they are replaced by U+FFFD, never dropped)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.replaced = 0
        self.name = f"tap_intercom_export_count_{id(self)}"
        codecs.register_error(self.name, self._handle)

    def _handle(self, err: UnicodeError) -> tuple[str, int]:
        if not isinstance(err, UnicodeDecodeError):
            raise err
        self.replaced += err.end - err.start
        return "\ufffd", err.end

    def report(self, logger: logging.Logger, member: str) -> None:
        """Warn once per member about the bytes replaced in it, then count again from zero."""
        if self.replaced:
            logger.warning(
                "%s: %d byte(s) were not UTF-8 and were replaced by U+FFFD.", member, self.replaced
            )
            self.replaced = 0


def iter_csv(stream: t.BinaryIO, counter: DecodeCounter) -> tuple[list[str], t.Iterator[list[str]]]:
    """Return the header and an iterator over the rows of a CSV member (BOM and bad bytes handled)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors=counter.name, newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return [], iter(())
    return [h.strip() for h in header], reader
