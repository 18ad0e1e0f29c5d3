"""What every message export stream shares: where this run starts emitting (the ledger's plan)."""

from __future__ import annotations

from tap_intercom_export.jobs.stream import ExportJobStream


class ExportWindowStream(ExportJobStream):
    """What the job ledger and the CSV streams share."""

    #: Unix seconds from which this run emits rows (set by the ledger's plan).
    export_from: int = 0
