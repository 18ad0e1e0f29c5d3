"""Command-line entry point: the SDK's CLI, with the tap's own errors ending in one line."""

from __future__ import annotations

import logging
import sys

from singer_sdk.exceptions import FatalAPIError

from tap_intercom_export.errors import IntercomError
from tap_intercom_export.tap import TapIntercomExport


def main() -> None:
    """Run the tap; a known failure prints one actionable line and exits 1, without a traceback."""
    try:
        TapIntercomExport.cli()
    except (IntercomError, FatalAPIError) as exc:
        logging.getLogger(TapIntercomExport.name).debug("Failure details", exc_info=True)
        print(f"tap-intercom-export: error: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        sys.exit(1)
