"""The export archive: every container Intercom may send, member names, and CSV oddities."""

from __future__ import annotations

import gzip
import zipfile
from typing import TYPE_CHECKING

import pytest
from fake_intercom.exports import write_archive

from tap_intercom_export.content.kinds import ContentNamer, kind_of_member
from tap_intercom_export.errors import ArchiveError
from tap_intercom_export.jobs.archive import Archive, DecodeCounter, iter_csv, sniff

if TYPE_CHECKING:
    from pathlib import Path

OPENS = b"receipt_id,opened_at\nr1,1699920000\nr2,2023-11-14 00:00:00 UTC\n"
RECEIPTS = b"receipt_id,received_at,content_id\nr1,1699920000,c1\n"


def rows_of(archive: Archive, kind: str) -> list[list[str]]:
    out = []
    for member in archive.kinds().get(kind, []):
        with archive.open_member(member) as raw:
            _, rows = iter_csv(raw, DecodeCounter())
            out.extend(rows)
    return out


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("open_20240101-000000.csv", "open"),
        ("receipts_20240101_000000.csv", "receipt"),
        ("export/replies_20240101-000000.csv", "reply"),
        ("answer_combined_20240101-000000.csv", "answer_combined"),
        ("answers_combined_20240101-000000.csv", "answer_combined"),
        ("series_completions_20240101-000000.csv", "series_completion"),
        ("tour_step_view.csv", "tour_step_view"),
        ("fresh_new_thing_20240101-000000.csv", "fresh_new_thing"),
        ("README.txt", None),
    ],
)
def test_member_names(name: str, kind: str | None) -> None:
    assert kind_of_member(name) == kind


@pytest.mark.parametrize("container", ["zip", "tar.gz"])
def test_multi_file_containers(tmp_path: Path, container: str) -> None:
    path = tmp_path / "download.bin"
    write_archive(
        path,
        [("open_20231114-000000.csv", OPENS), ("receipt_20231114-000000.csv", RECEIPTS)],
        container,
    )
    archive = Archive.open(path, ContentNamer())
    assert archive.container == container
    assert sorted(archive.kinds()) == ["open", "receipt"]
    assert rows_of(archive, "open") == [["r1", "1699920000"], ["r2", "2023-11-14 00:00:00 UTC"]]
    assert {m.kind: m.newlines for m in archive.members} == {"open": 3, "receipt": 2}


def test_single_gzipped_csv_is_read_by_its_header(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    with gzip.open(path, "wb") as gz:
        gz.write(RECEIPTS)
    archive = Archive.open(path, ContentNamer())
    assert archive.container == "csv.gz"
    assert rows_of(archive, "receipt") == [["r1", "1699920000", "c1"]]


def test_plain_csv(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    path.write_bytes(OPENS)
    assert sniff(path) == "csv"
    assert rows_of(Archive.open(path, ContentNamer()), "open")[0] == ["r1", "1699920000"]


def test_csv_oddities(tmp_path: Path) -> None:
    huge = "x" * 300_000  # over csv's default 128 KiB field limit
    data = (
        f'\ufeffreceipt_id,question,response\nr1,"line one\nline two, with ""quotes""",{huge}\n'
    ).encode() + b"r2,caf\xe9,ok\xff\n"
    path = tmp_path / "download.bin"
    write_archive(path, [("answer_20231114-000000.csv", data)], "zip")
    archive = Archive.open(path, ContentNamer())
    counter = DecodeCounter()
    with archive.open_member(archive.members[0]) as raw:
        header, rows = iter_csv(raw, counter)
        rows = list(rows)
    assert header == ["receipt_id", "question", "response"]  # BOM stripped
    assert rows[0] == ["r1", 'line one\nline two, with "quotes"', huge]
    assert rows[1] == ["r2", "caf\ufffd", "ok\ufffd"]
    assert counter.replaced == 2  # two bad bytes apart: each counted


def test_corrupt_zip_member_is_an_archive_error(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    write_archive(path, [("open_20231114-000000.csv", OPENS * 2000)], "zip")
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # flip a byte inside the compressed member
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        Archive.open(path, ContentNamer())


def test_truncated_gzip_is_an_archive_error(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    with gzip.open(path, "wb") as gz:
        gz.write(RECEIPTS * 5000)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ArchiveError):
        Archive.open(path, ContentNamer())


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    path.write_bytes(b"\x00\x01\x02binary junk" * 10)
    with pytest.raises(ArchiveError, match="neither a zip"):
        Archive.open(path, ContentNamer())


def test_empty_download_is_an_archive_error(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    path.write_bytes(b"")
    with pytest.raises(ArchiveError, match="empty"):
        Archive.open(path, ContentNamer())


def test_zip_with_directory_and_non_csv_entries(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("export/", b"")
        zf.writestr("export/notes.txt", b"hello")
        zf.writestr("export/open_20231114-000000.csv", OPENS)
    archive = Archive.open(path, ContentNamer())
    assert [m.kind for m in archive.members] == ["open"]
