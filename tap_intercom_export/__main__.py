"""Run the tap with `python -m tap_intercom_export`."""

from tap_intercom_export.cli import main

main()
