"""The SDK's standard tap tests, against the fake Intercom API on loopback."""

from __future__ import annotations

import atexit

from fake_intercom import build
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import DAY, NOW, TOKEN

# The standard suite is built at import time, so its fake starts here and stops at exit.
_fake = build(
    start=NOW - 20 * DAY, end=NOW, receipts_per_day=12, events_now=NOW, invent_kind=True
).start()
atexit.register(_fake.stop)

CONFIG = {
    "access_token": TOKEN,
    "api_url": _fake.url,
    "start_date": "2023-11-01T00:00:00Z",
    "end_date": "2023-11-14T00:00:00Z",
    "export_poll_interval_seconds": 0.01,
    # The fake's reports are of 2023, older than Intercom's 2 years before today (the standard
    # tests run on the real clock): as for a workspace that keeps them longer.
    "reporting_retention_days": 36500,
}

TestTapIntercomExport = get_tap_test_class(
    tap_class=TapIntercomExport,
    config=CONFIG,
    suite_config=SuiteConfig(ignore_no_records_for_streams=[]),
)
