"""Every setting of the tap: its type, default, bounds and description, stated once.

Each is a `Setting` (setting.py: its JSON Schema property and how a value is read). `CONFIG_SCHEMA` (the tap's `config_jsonschema`, so `--about`, Meltano and the SDK's validation see
the same bounds) and `Settings.from_config` (the typed values the streams read, defaults filled in,
each bad value refused in one line that names the setting) are both built from `SETTINGS`.
"""

from __future__ import annotations

import ipaddress
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_intercom_export.batchformat import check_batch_encoding
from tap_intercom_export.errors import ConfigError
from tap_intercom_export.setting import Setting

#: Days before now where a first sync starts when `start_date` is not set.
DEFAULT_START_DAYS = 30
#: Intercom lists a contact's events up to this many days old.
LISTABLE_DAYS = 90
#: The most workers reading contacts at once (each a thread with its own connection).
MAX_CONCURRENT_REQUESTS = 256
#: Intercom's limit of pending reporting export jobs per workspace.
MAX_PENDING_REPORTING_JOBS = 5
#: Intercom keeps reporting data this long by default (2 years; 3 with extended retention).
REPORTING_RETENTION_DAYS = 730

API_HOSTS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}

# bench/bench_pipeline.py: BATCH into target-postgres (use_copy) is ~5x the RECORD pipeline.
BATCH_CONFIG_DESCRIPTION = (
    "BATCH files (jsonl with gzip or none; parquet, with the parquet extra) instead of RECORD "
    "messages; the message_* streams write them straight from the export. Use it with SDK "
    "loaders that read batch files (target-postgres with use_copy, target-snowflake); leave it "
    "unset (RECORD) for target-duckdb, target-jsonl and other loaders. README: Loading: RECORD "
    "or BATCH."
)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "access_token", "string", "Access token",
        "Intercom access token with the 'Export message data', 'Read events' and 'Read and list "
        "users and companies' permissions.",
        required=True, secret=True,
    ),
    Setting(
        "start_date", "date-time", "Start date",
        f"Earliest message creation time to export (default: {DEFAULT_START_DAYS} days ago). "
        "Contact events cannot go back further than Intercom's 90 days.",
    ),
    Setting(
        "end_date", "date-time", "End date",
        "Latest message creation time to export (default: now).",
    ),
    Setting(
        "region", "string", "Region",
        "Where the workspace is hosted: us (api.intercom.io), eu (api.eu.intercom.io) or au "
        "(api.au.intercom.io).",
        default="us", allowed=tuple(API_HOSTS),
    ),
    Setting(
        "api_url", "string", "API URL",
        "Override of the region's API URL (proxies, tests). http:// is accepted only for "
        "loopback hosts.",
    ),
    Setting(
        "intercom_version", "string", "Intercom API version",
        "Sent as the Intercom-Version header.",
        default="2.14",
    ),
    Setting(
        "export_window_days", "integer", "Export window (days)",
        "Span of message creation time covered by each export job.",
        default=7, minimum=1, unit="days",
    ),
    Setting(
        "export_poll_interval_seconds", "number", "Export poll interval (s)",
        "Longest wait between two status checks of an export job (the first checks come sooner).",
        default=30, exclusive_minimum=0, unit="seconds",
    ),
    Setting(
        "export_timeout_seconds", "number", "Export timeout (s)",
        "How long to wait for one export job (or for another workspace job to finish) before "
        "failing; an unfinished job of ours is resumed by the next run.",
        default=43200, exclusive_minimum=0, unit="seconds",
    ),
    Setting(
        "export_row_limit", "integer", "Export row limit",
        "Intercom's cap on the rows of one job: a window whose receipts reach it was truncated "
        "and is exported again as two halves.",
        default=10_000_000, minimum=1,
    ),
    Setting(
        "export_lookback_days", "number", "Export lookback (days)",
        "Re-export the messages of this many days before the bookmark in one job reaching up to "
        "the run's end, to pick up opens, clicks, replies ... that happened after their window "
        "was first exported. 0 = off.",
        default=7, minimum=0, unit="days",
    ),
    Setting(
        "export_lookback_interval_hours", "number", "Export lookback interval (h)",
        "Run the lookback re-export at most once per this many hours (the state remembers when "
        "it last ran); 0 = on every run.",
        default=24, minimum=0, unit="hours",
    ),
    Setting(
        "export_jobs_ahead", "integer", "Export jobs ahead",
        "1 = create the next window's export job as soon as a window is downloaded, so Intercom "
        "prepares it while this window's rows are emitted; 0 = one job after another. Intercom "
        "allows one pending job, so 1 is the most that helps.",
        default=1, minimum=0, maximum=1, why="0: one job after another, 1: overlap",
    ),
    Setting(
        "max_concurrent_requests", "integer", "Max concurrent requests",
        "Most requests in flight at once while reading contacts' events and event summaries "
        "(1 = one at a time). The tap spreads Intercom's rate limit evenly over each window, so "
        "as many are in flight as that rate times the answers' latency, up to this: 64 reach "
        "Intercom's 167 requests/s up to about 380 ms an answer.",
        default=64, minimum=1, maximum=MAX_CONCURRENT_REQUESTS,
        why="one worker thread each",
    ),
    Setting(
        "events_per_page", "integer", "Events per page",
        "Events asked for per request when listing a contact's events.",
        default=50, minimum=1,
    ),
    Setting(
        "event_settle_seconds", "integer", "Event settle time (s)",
        "contact_events reads events at least this old; newer ones are read by the next run. "
        "Covers Intercom's usual ingestion delay; events that arrive later are read by the "
        "lookback (events_lookback_hours).",
        default=300, minimum=0, unit="seconds",
    ),
    Setting(
        "events_lookback_hours", "number", "Events lookback (h)",
        "contact_events also reads, on every run, the events created this many hours before the "
        "bookmark and emits them again with the same event_key (loaders upsert them): an event "
        "that reaches Intercom up to this late is read by the next run. 0 = off.",
        default=24, minimum=0, maximum=LISTABLE_DAYS * 24, unit="hours",
        why=f"Intercom lists events up to {LISTABLE_DAYS} days old",
    ),
    Setting(
        "events_deep_lookback_days", "number", "Events deep lookback (days)",
        "Once per events_deep_lookback_interval_hours, contact_events reads back this many days "
        "before where its last deep lookback ended, so an event up to this late is read within "
        "an interval. 0 = off.",
        default=7, minimum=0, maximum=LISTABLE_DAYS, unit="days",
        why=f"Intercom lists events up to {LISTABLE_DAYS} days old",
    ),
    Setting(
        "events_deep_lookback_interval_hours", "number", "Events deep lookback interval (h)",
        "Run the deep lookback at most once per this many hours (the state remembers where the "
        "last one ended); 0 = on every run.",
        default=24, minimum=0, unit="hours",
    ),
    Setting(
        "event_summaries_full_refresh_days", "integer", "Event summaries full re-read (days)",
        "contact_event_summaries re-reads only the summaries of contacts with events created "
        "since the last run or in the lookback before it, and every contact's summary once this "
        "many days have passed since the last full read (catching deleted, backdated or late "
        "events). 0 = every run reads every summary.",
        default=7, minimum=0, unit="days",
    ),
    Setting(
        "reporting_datasets", "strings", "Reporting datasets",
        "Ids of the reporting datasets to offer as reporting_<id> streams (default: every "
        "dataset the workspace lists). Needs the 'Export reporting data' permission.",
    ),
    Setting(
        "reporting_window_days", "number", "Reporting window (days)",
        "Span of a reporting dataset's time attribute covered by each reporting export job.",
        default=7, exclusive_minimum=0, unit="days",
    ),
    Setting(
        "reporting_lookback_days", "number", "Reporting lookback (days)",
        "Re-export this many days before each reporting stream's bookmark on every run: "
        "reporting rows change after the fact (a conversation closes days after it started). "
        "Keys make it an upsert. 0 = off.",
        default=3, minimum=0, unit="days",
    ),
    Setting(
        "reporting_max_concurrent_jobs", "integer", "Reporting jobs in flight",
        f"Reporting export jobs pending at once across datasets (1 to {MAX_PENDING_REPORTING_JOBS}). "
        f"Intercom allows {MAX_PENDING_REPORTING_JOBS} pending per workspace, shared with other "
        "tools.",
        default=2, minimum=1, maximum=MAX_PENDING_REPORTING_JOBS,
        why=f"Intercom allows {MAX_PENDING_REPORTING_JOBS} pending reporting jobs per workspace",
    ),
    Setting(
        "reporting_timezone", "timezone", "Reporting time zone",
        "The time zone Intercom writes reporting times in (they carry no zone), as an IANA name "
        "such as America/New_York, or UTC. Default: the workspace's time zone, read from "
        "Intercom (GET /me, app.timezone). Every reporting time is emitted as an instant in UTC.",
    ),
    Setting(
        "reporting_retention_days", "integer", "Reporting retention (days)",
        f"How far back Intercom keeps reporting data ({REPORTING_RETENTION_DAYS} days = 2 years; "
        "1095 with extended retention). A start_date or bookmark older than that is moved "
        "forward to it, with a warning.",
        default=REPORTING_RETENTION_DAYS, minimum=1, unit="days",
    ),
    Setting(
        "network_retry_seconds", "number", "Network retry time (s)",
        "How long a request that gets no answer, a dropped connection or an HTTP 5xx is retried "
        "(waits of 1, 2, 4 ... 30 s) before the run fails with one line naming the host; an "
        "outage shorter than this costs nothing. Rate limits (429) are waited out separately.",
        default=120, minimum=0, unit="seconds",
    ),
    Setting(
        "metrics_log_level", "string", "Metrics log level",
        "info turns on the Singer SDK's METRIC log lines (record counts, request durations), "
        "for a metrics pipeline; warning (the default) leaves them out. At log level DEBUG "
        "they are always on.",
        default="warning", allowed=("warning", "info"),
    ),
)  # fmt: skip

CONFIG_SCHEMA: dict[str, t.Any] = th.PropertiesList(*(s.property() for s in SETTINGS)).to_dict()


def is_loopback(host: str | None) -> bool:
    """Tell whether a host name or address is this machine."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _api_url(region: str, api_url: str | None) -> str:
    url = (api_url or API_HOSTS[region]).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return url
    msg = (
        f"api_url {url!r} is not allowed: use an https:// URL "
        "(http:// only for loopback hosts such as a local test server)."
    )
    raise ConfigError(msg)


@dataclass(frozen=True)
class Settings:
    """The tap's settings, read and checked once: defaults filled in, dates as unix seconds."""

    access_token: str
    start_date: int | None
    end_date: int | None
    region: str
    #: The API root: `api_url` if set (https, or http on loopback), else the region's.
    api_url: str
    intercom_version: str
    export_window_days: int
    export_poll_interval_seconds: float
    export_timeout_seconds: float
    export_row_limit: int
    export_lookback_days: float
    export_lookback_interval_hours: float
    export_jobs_ahead: int
    max_concurrent_requests: int
    events_per_page: int
    event_settle_seconds: int
    events_lookback_hours: float
    events_deep_lookback_days: float
    events_deep_lookback_interval_hours: float
    event_summaries_full_refresh_days: int
    reporting_datasets: tuple[str, ...] | None
    reporting_window_days: float
    reporting_lookback_days: float
    reporting_max_concurrent_jobs: int
    #: An IANA zone name; None: the workspace's (GET /me).
    reporting_timezone: str | None
    reporting_retention_days: int
    network_retry_seconds: float
    metrics_log_level: str

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Read every setting; the first one that cannot work raises a one-line ConfigError."""
        values = {s.name: s.read(config) for s in SETTINGS}
        if not str(values["access_token"] or "").strip():
            msg = (
                "Setting access_token is missing: set it to an Intercom access token "
                "(TAP_INTERCOM_EXPORT_ACCESS_TOKEN, or `meltano config tap-intercom-export set "
                "access_token`)."
            )
            raise ConfigError(msg)
        values["api_url"] = _api_url(values["region"], values["api_url"])
        start, end = values["start_date"], values["end_date"]
        if start is not None and end is not None and start >= end:
            msg = "Setting start_date must be before end_date."
            raise ConfigError(msg)
        return cls(**values)


def check_config(config: t.Mapping[str, t.Any]) -> Settings:
    """Refuse settings that cannot work, with one line that names the setting to fix."""
    settings = Settings.from_config(config)
    batch = config.get("batch_config")
    if batch:
        check_batch_encoding(batch.get("encoding") or {})
    return settings
