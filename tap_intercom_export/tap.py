"""tap-intercom-export: Intercom message data exports and contact events, as Singer streams."""

from __future__ import annotations

import time
import typing as t

from typing_extensions import override

from tap_intercom_export import logs, sdk, settings
from tap_intercom_export.content import streams
from tap_intercom_export.content.other import MessageOtherStatisticsStream
from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.errors import ConfigError, InputFileError
from tap_intercom_export.events.streams import ContactEventsStream
from tap_intercom_export.events.summaries import ContactEventSummariesStream
from tap_intercom_export.reporting import discover as reporting

if t.TYPE_CHECKING:
    from tap_intercom_export.client import IntercomStream

#: Names of this tap's streams known without asking Intercom (reporting_* streams vary).
FIXED_STREAMS = frozenset(
    {
        "message_export_jobs",
        *(spec.stream_name for spec in FILE_KINDS.values()),
        "message_other_statistics",
        "contact_events",
        "contact_event_summaries",
    }
)


def is_ours(stream_name: str) -> bool:
    """Whether a stream name can be one of this tap's."""
    return stream_name in FIXED_STREAMS or stream_name.startswith("reporting_")


class TapIntercomExport(sdk.TapHooks):
    """Singer tap for Intercom's message data export and contact events."""

    name = "tap-intercom-export"
    # msgspec encoding, flushed at STATE instead of after every record (see sdk.py).
    message_writer_class = sdk.BufferedMsgSpecWriter
    # Every setting, its default and its bounds: settings.py.
    config_jsonschema = settings.CONFIG_SCHEMA

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """The SDK's tap, logging what a person follows (logs.py), its run timed for the summary."""
        logs.quiet_sdk(type(self).logger)
        self.started = time.monotonic()
        super().__init__(*args, **kwargs)

    @override
    def on_config(self) -> None:
        """METRIC lines on or off, before the first request (discovery) could log one."""
        logs.set_metrics(str(self.config.get("metrics_log_level") or "").lower(), self.logger)

    @override
    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, t.Any]) -> None:
        """The SDK's built-in settings, with batch_config saying when BATCH pays off here."""
        super().append_builtin_config(config_jsonschema)
        batch = config_jsonschema["properties"].get("batch_config")
        if batch is not None:
            batch["description"] = settings.BATCH_CONFIG_DESCRIPTION

    @override
    def check_settings(self) -> None:
        """Every setting of the tap's own, each bad value refused in one line (settings.py)."""
        settings.check_config(self.config)

    @override
    def config_invalid(self, errors: list[str]) -> Exception:
        """What the SDK's schema found in its built-in settings (stream maps, batch_config, ...)."""
        return ConfigError(f"Invalid config: {'; '.join(errors)}.")

    @override
    def stopped(self, signum: int) -> None:
        """Say why the run ends, and what the next run does."""
        self.logger.warning(
            "Stopped by %s: the last STATE above lets the next run resume (an export job in "
            "flight keeps running in Intercom and is resumed, not created again).",
            sdk.signal_name(signum),
        )

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """Refuse a state of the wrong shape in one line; warn when it holds nothing of ours."""
        bookmarks = state.get("bookmarks", {}) if isinstance(state, dict) else None
        bad = not isinstance(bookmarks, dict) or any(
            not isinstance(v, dict) for v in bookmarks.values()
        )
        if bad:
            msg = (
                'The state is not a Singer state: it must be {"bookmarks": {"<stream>": {...}}}. '
                "Pass the state Meltano or the tap's last STATE message wrote, or none for a "
                "first run."
            )
            raise InputFileError(msg)
        t.cast("dict[str, t.Any]", bookmarks)
        if bookmarks and not any(is_ours(name) for name in bookmarks):
            self.logger.warning(
                "The state holds no bookmark of this tap (it has %s): probably another tap's "
                "state. This run starts from start_date, as a first run does.",
                ", ".join(sorted(bookmarks)[:5]) + (", ..." if len(bookmarks) > 5 else ""),  # noqa: PLR2004
            )
        super().load_state(state)

    @override
    def discover_streams(self) -> list[IntercomStream]:
        """Every stream: export ledger, export file kinds, events, reporting datasets.

        One stream per message export file kind and one per reporting dataset.
        """
        found = [
            streams.MessageExportJobsStream(self),
            *(cls(self) for cls in streams.MESSAGE_STAT_STREAMS),
            MessageOtherStatisticsStream(self),
            ContactEventsStream(self),
            ContactEventSummariesStream(self),
            *reporting.discover(self),
        ]
        self._check_catalog({s.name for s in found})
        return found

    def _check_catalog(self, names: set[str]) -> None:
        catalog = self.input_catalog
        if catalog is None:
            return
        selected = {e.tap_stream_id for e in catalog.streams if e.metadata.resolve_selection()[()]}
        unknown = sorted(selected - names)
        if selected and not selected & names:
            msg = (
                f"The catalog selects no stream of this tap (it selects {', '.join(unknown)}): "
                "run `tap-intercom-export --config ... --discover` for this tap's catalog, or "
                "check `select` in meltano.yml."
            )
            raise InputFileError(msg)
        if unknown:
            self.logger.warning(
                "The catalog selects stream(s) this tap does not have, ignored: %s. Run "
                "--discover again if it is old.",
                ", ".join(unknown),
            )
        if not selected:
            self.logger.warning(
                "The catalog selects no stream: nothing is extracted. Select streams (Meltano: "
                "`select` in meltano.yml, `meltano select tap-intercom-export --list`)."
            )
