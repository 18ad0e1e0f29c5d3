"""The download step of the export-job engine: a finished job's archive to disk, opened and checked.

The archive is streamed into a temporary file (never held in memory), opened by the source's
`ExportClient.open_archive` (which decompresses every member once, so a corrupt download emits
nothing) and inspected (`ExportClient.inspect`: e.g. a file cut at the row cap splits the window).
A download that fails half way or does not open is fetched again, up to `attempts` times.
"""

from __future__ import annotations

import tempfile
import typing as t
from pathlib import Path

import requests

from tap_intercom_export.errors import ArchiveError, IntercomNotFoundError
from tap_intercom_export.jobs.api import SplitWindow

if t.TYPE_CHECKING:
    import logging

    from tap_intercom_export.jobs.api import ExportClient
    from tap_intercom_export.jobs.model import WindowExport


class DownloadGoneError(Exception):
    """The job has no download any more (HTTP 404: expired or removed): create it again."""


def download_archive(  # noqa: PLR0913 - the engine's settings and clocks, passed as they are
    client: ExportClient,
    result: WindowExport,
    *,
    attempts: int,
    temp_dir: str | None,
    clock: t.Callable[[], float],
    logger: logging.Logger,
) -> None:
    """Download `result.job`'s archive into `result.archive`, checked; the file is kept until done."""
    job = result.job
    for attempt in range(1, attempts + 1):
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept until the window is done
            prefix=f"intercom-export-{job.job_id}-",
            suffix=".bin",
            dir=temp_dir,
            delete=False,
        )
        path = Path(handle.name)
        started = clock()
        try:
            with handle:
                result.download_bytes = client.download(job, t.cast("t.BinaryIO", handle))
            archive = client.open_archive(path)
        except IntercomNotFoundError as exc:
            path.unlink(missing_ok=True)
            raise DownloadGoneError(str(exc)) from exc
        except (ArchiveError, requests.exceptions.RequestException, OSError) as exc:
            path.unlink(missing_ok=True)
            if attempt == attempts:
                msg = (
                    f"The download of export job {job.job_id} (window {result.window}) could "
                    f"not be read after {attempt} attempts: {exc}. Nothing of this window was "
                    "emitted; run the tap again, and report it if it persists."
                )
                raise ArchiveError(msg) from exc
            logger.warning(
                "Download of export job %s failed (%s): downloading again (%d/%d).",
                job.job_id,
                exc,
                attempt + 1,
                attempts,
            )
            continue
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        result.download_seconds = clock() - started
        result.archive = archive
        logger.info(
            "Downloaded export job %s: %.1f MB %s, %d file(s), in %.1f s.",
            job.job_id,
            result.download_bytes / 1e6,
            archive.container,
            len(archive.members),
            result.download_seconds,
        )
        logger.debug(
            "Export job %s files: %s",
            job.job_id,
            ", ".join(f"{m.name} ({m.newlines} lines)" for m in archive.members) or "none",
        )
        try:
            client.inspect(job, result.window, archive)
        except SplitWindow:
            archive.path.unlink(missing_ok=True)
            raise
        return
