"""tap-intercom-export: Intercom message data exports and contact events, as Singer streams."""

from __future__ import annotations

import typing as t

from singer_sdk import Tap
from typing_extensions import override

from tap_intercom_export import sdk, settings
from tap_intercom_export.content import streams
from tap_intercom_export.content.other import MessageOtherStatisticsStream
from tap_intercom_export.events.streams import ContactEventsStream
from tap_intercom_export.events.summaries import ContactEventSummariesStream
from tap_intercom_export.reporting import discover as reporting

if t.TYPE_CHECKING:
    from tap_intercom_export.client import IntercomStream


class TapIntercomExport(Tap):
    """Singer tap for Intercom's message data export and contact events."""

    name = "tap-intercom-export"
    # msgspec encoding into a buffer of the tap's own, written out at each STATE (see sdk.py).
    message_writer_class = sdk.BufferedMsgSpecWriter
    # Every setting, its default and its bounds: settings.py.
    config_jsonschema = settings.CONFIG_SCHEMA

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """The SDK's tap, whose STATE points write out the records buffered before them."""
        super().__init__(*args, **kwargs)
        sdk.own_output(self)

    @override
    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, t.Any]) -> None:
        """The SDK's built-in settings, with batch_config saying when BATCH pays off here."""
        super().append_builtin_config(config_jsonschema)
        batch = config_jsonschema["properties"].get("batch_config")
        if batch is not None:
            batch["description"] = settings.BATCH_CONFIG_DESCRIPTION

    @override
    def discover_streams(self) -> list[IntercomStream]:
        """Every stream: export ledger, export file kinds, events, reporting datasets.

        One stream per message export file kind and one per reporting dataset.
        """
        settings.check_config(self.config)
        return [
            streams.MessageExportJobsStream(self),
            *(cls(self) for cls in streams.MESSAGE_STAT_STREAMS),
            MessageOtherStatisticsStream(self),
            ContactEventsStream(self),
            ContactEventSummariesStream(self),
            *reporting.discover(self),
        ]


if __name__ == "__main__":
    TapIntercomExport.cli()
