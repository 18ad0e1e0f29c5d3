"""tap-intercom-export: Intercom message data exports and contact events, as Singer streams."""

from __future__ import annotations

import typing as t

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from tap_intercom_export.client import IntercomStream, check_config
from tap_intercom_export.content import streams
from tap_intercom_export.content.other import MessageOtherStatisticsStream
from tap_intercom_export.events import streams as event_streams
from tap_intercom_export.reporting import discover as reporting
from tap_intercom_export.writer import BufferedMsgSpecWriter

# bench/bench_pipeline.py: BATCH into target-postgres (use_copy) is ~5x the RECORD pipeline.
BATCH_CONFIG_DESCRIPTION = (
    "BATCH files (jsonl, gzip or none) instead of RECORD messages; the message_* streams write "
    "them straight from the export. Use it with SDK loaders that read batch files "
    "(target-postgres with use_copy, target-snowflake); leave it unset (RECORD) for "
    "target-duckdb, target-jsonl and other loaders. README: Loading: RECORD or BATCH."
)


class TapIntercomExport(Tap):
    """Singer tap for Intercom's message data export and contact events."""

    name = "tap-intercom-export"
    # msgspec encoding, flushed at STATE instead of after every record (see writer.py).
    message_writer_class = BufferedMsgSpecWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "access_token",
            th.StringType,
            required=True,
            secret=True,
            title="Access token",
            description="Intercom access token with the 'Export message data', 'Read events' "
            "and 'Read and list users and companies' permissions.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="Earliest message creation time to export (default: 30 days ago). "
            "Contact events cannot go back further than Intercom's 90 days.",
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            title="End date",
            description="Latest message creation time to export (default: now).",
        ),
        th.Property(
            "region",
            th.StringType,
            default="us",
            allowed_values=["us", "eu", "au"],
            title="Region",
            description="Where the workspace is hosted: us (api.intercom.io), "
            "eu (api.eu.intercom.io) or au (api.au.intercom.io).",
        ),
        th.Property(
            "api_url",
            th.StringType,
            title="API URL",
            description="Override of the region's API URL (proxies, tests). "
            "http:// is accepted only for loopback hosts.",
        ),
        th.Property(
            "intercom_version",
            th.StringType,
            default="2.14",
            title="Intercom API version",
            description="Sent as the Intercom-Version header.",
        ),
        th.Property(
            "export_window_days",
            th.IntegerType,
            default=7,
            title="Export window (days)",
            description="Span of message creation time covered by each export job.",
        ),
        th.Property(
            "export_poll_interval_seconds",
            th.NumberType,
            default=30,
            title="Export poll interval (s)",
            description="Longest wait between two status checks of an export job "
            "(the first checks come sooner).",
        ),
        th.Property(
            "export_timeout_seconds",
            th.NumberType,
            default=43200,
            title="Export timeout (s)",
            description="How long to wait for one export job (or for another workspace job to "
            "finish) before failing; an unfinished job of ours is resumed by the next run.",
        ),
        th.Property(
            "export_row_limit",
            th.IntegerType,
            default=10_000_000,
            title="Export row limit",
            description="Intercom's cap on the rows of one job: a window whose receipts reach "
            "it was truncated and is exported again as two halves.",
        ),
        th.Property(
            "export_lookback_days",
            th.NumberType,
            default=7,
            title="Export lookback (days)",
            description="Re-export the messages of this many days before the bookmark in one job "
            "reaching up to the run's end, to pick up opens, clicks, replies ... that happened "
            "after their window was first exported. 0 = off.",
        ),
        th.Property(
            "export_lookback_interval_hours",
            th.NumberType,
            default=24,
            title="Export lookback interval (h)",
            description="Run the lookback re-export at most once per this many hours (the state "
            "remembers when it last ran); 0 = on every run.",
        ),
        th.Property(
            "export_jobs_ahead",
            th.IntegerType,
            default=1,
            title="Export jobs ahead",
            description="1 = create the next window's export job as soon as a window is "
            "downloaded, so Intercom prepares it while this window's rows are emitted; 0 = one "
            "job after another. Intercom allows one pending job, so 1 is the most that helps.",
        ),
        th.Property(
            "max_concurrent_requests",
            th.IntegerType,
            default=8,
            title="Max concurrent requests",
            description="Requests in flight at once while reading contacts' events and event "
            "summaries (1 = one at a time). Intercom's rate limit still applies: the tap holds "
            "requests when X-RateLimit-Remaining runs out and resumes when the window resets.",
        ),
        th.Property(
            "events_per_page",
            th.IntegerType,
            default=50,
            title="Events per page",
            description="Events asked for per request when listing a contact's events.",
        ),
        th.Property(
            "event_settle_seconds",
            th.IntegerType,
            default=300,
            title="Event settle time (s)",
            description="contact_events reads events at least this old; newer ones are read by "
            "the next run. Covers Intercom's ingestion delay so that no late event falls behind "
            "the bookmark.",
        ),
        th.Property(
            "event_summaries_full_refresh_days",
            th.IntegerType,
            default=7,
            title="Event summaries full re-read (days)",
            description="contact_event_summaries re-reads only the summaries of contacts with "
            "events created since the last run, and every contact's summary once this many days "
            "have passed since the last full read (catching deleted, backdated or late events). "
            "0 = every run reads every summary.",
        ),
        th.Property(
            "reporting_datasets",
            th.ArrayType(th.StringType),
            title="Reporting datasets",
            description="Ids of the reporting datasets to offer as reporting_<id> streams "
            "(default: every dataset the workspace lists). Needs the 'Export reporting data' "
            "permission.",
        ),
        th.Property(
            "reporting_window_days",
            th.NumberType,
            default=7,
            title="Reporting window (days)",
            description="Span of a reporting dataset's time attribute covered by each reporting "
            "export job.",
        ),
        th.Property(
            "reporting_lookback_days",
            th.NumberType,
            default=3,
            title="Reporting lookback (days)",
            description="Re-export this many days before each reporting stream's bookmark on "
            "every run: reporting rows change after the fact (a conversation closes days after "
            "it started). Keys make it an upsert. 0 = off.",
        ),
        th.Property(
            "reporting_max_concurrent_jobs",
            th.IntegerType,
            default=2,
            title="Reporting jobs in flight",
            description="Reporting export jobs pending at once across datasets (1 to 5). "
            "Intercom allows 5 pending per workspace, shared with other tools.",
        ),
    ).to_dict()

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, t.Any]) -> None:
        """The SDK's built-in settings, with batch_config saying when BATCH pays off here."""
        super().append_builtin_config(config_jsonschema)
        batch = config_jsonschema["properties"].get("batch_config")
        if batch is not None:
            batch["description"] = BATCH_CONFIG_DESCRIPTION

    def discover_streams(self) -> list[IntercomStream]:
        """Every stream: export ledger, export file kinds, events, reporting datasets.

        One stream per message export file kind and one per reporting dataset.
        """
        check_config(self.config)
        return [
            streams.MessageExportJobsStream(self),
            *(cls(self) for cls in streams.MESSAGE_STAT_STREAMS),
            MessageOtherStatisticsStream(self),
            *(cls(self) for cls in event_streams.EVENT_STREAMS),
            *reporting.discover(self),
        ]

    def load_streams(self) -> list[Stream]:  # type: ignore[misc]  # the SDK has no other hook to order streams; summaries must follow contact_events
        """The SDK's streams (by name), contact_events before contact_event_summaries."""
        return sorted(super().load_streams(), key=event_streams.sync_order)


if __name__ == "__main__":
    TapIntercomExport.cli()
