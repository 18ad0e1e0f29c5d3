"""Which reporting streams a run offers: from the workspace's datasets, or from the catalog.

Discovery asks `GET /export/reporting_data/get_datasets`; a token without the "Export reporting
data" permission gets one warning and every other stream. A run given a catalog rebuilds its
reporting streams from the catalog's schemas, so a sync never depends on discovery again.
"""

from __future__ import annotations

import typing as t

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_intercom_export.client import IntercomStream
from tap_intercom_export.errors import (
    ConfigError,
    IntercomAPIError,
    IntercomAuthError,
    IntercomNotFoundError,
    NetworkError,
)
from tap_intercom_export.reporting.api import DATASETS_PATH, SINCE_VERSION, ReportingExportClient
from tap_intercom_export.reporting.ledger import NAME as LEDGER
from tap_intercom_export.reporting.ledger import ReportingExportJobsStream
from tap_intercom_export.reporting.scheduler import PERMISSION_HINT, ReportingScheduler
from tap_intercom_export.reporting.schemas import DatasetSpec
from tap_intercom_export.reporting.streams import stream_class
from tap_intercom_export.settings import Settings

if t.TYPE_CHECKING:
    from singer_sdk import Tap


class _DatasetsProbe(IntercomStream):
    """Speaks `get_datasets` for discovery (never synced)."""

    name = "reporting_datasets"
    path = DATASETS_PATH
    schema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}
    # Discovery runs before every sync without a catalog: an unreachable API must not hold it
    # up for the ten tries (or the network retry time) of a sync request.
    max_tries = 3
    network_retry_seconds = 3.0


def _from_catalog(tap: Tap) -> list[DatasetSpec]:
    return [
        DatasetSpec.from_catalog(
            entry.tap_stream_id.removeprefix("reporting_"),
            entry.schema.to_dict(),
            entry.key_properties or (),
        )
        for entry in (tap.input_catalog.streams if tap.input_catalog else [])
        if entry.tap_stream_id.startswith("reporting_") and entry.tap_stream_id != LEDGER
    ]


def _from_workspace(tap: Tap) -> list[DatasetSpec]:
    try:
        return ReportingExportClient(_DatasetsProbe(tap)).datasets()
    except IntercomAuthError as exc:
        tap.logger.warning("No reporting dataset streams: %s; %s.", exc, PERMISSION_HINT)
    except IntercomNotFoundError as exc:
        tap.logger.warning(
            "No reporting dataset streams: %s. The reporting data export needs intercom_version %s "
            "or later.",
            exc,
            SINCE_VERSION,
        )
    except (
        IntercomAPIError,
        RetriableAPIError,
        NetworkError,
        requests.exceptions.RequestException,
    ) as exc:
        # Discovery of reporting datasets must not take the other streams down with it.
        tap.logger.warning(
            "No reporting dataset streams this time: listing reporting datasets failed: %s", exc
        )
    return []


def discover(tap: Tap) -> list[IntercomStream]:
    """A stream per reporting dataset (`reporting_datasets`, else all), then their job ledger.

    `reporting_export_jobs` is always offered, like `message_export_jobs`.
    """
    settings = Settings.from_config(tap.config)
    from_catalog = tap.input_catalog is not None
    specs = _from_catalog(tap) if from_catalog else _from_workspace(tap)
    wanted = settings.reporting_datasets
    if wanted is not None:
        ids = {s.id for s in specs}
        missing = [w for w in wanted if w not in ids]
        if missing and not from_catalog and specs:
            msg = (
                f"Setting reporting_datasets names dataset(s) this workspace does not list: "
                f"{', '.join(missing)}. It lists: {', '.join(sorted(ids))}."
            )
            raise ConfigError(msg)
        specs = [s for s in specs if s.id in set(wanted)]
    scheduler = ReportingScheduler(settings.reporting_max_concurrent_jobs, tap.logger)
    streams: list[IntercomStream] = [stream_class(spec, scheduler)(tap) for spec in specs]
    return [*streams, ReportingExportJobsStream(tap)]
