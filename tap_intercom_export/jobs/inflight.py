"""Export jobs created but not yet fully emitted, as they are kept in a stream's state.

With jobs created ahead (`ExportSettings.jobs_ahead`), a window's job may exist while an earlier
window is still being emitted. All of them are kept, in window order, in the list `in_flight_jobs`,
written on every STATE ([] when none). A run killed at any point resumes every one of them instead
of creating new jobs that Intercom would refuse while ours are pending.

Why one list: Meltano 4.4.1 merges a run's STATE into the stored one (`meltano run --full-refresh`,
`--state-strategy merge`) with `meltano.core.utils.merge`, which recurses into dicts: a key stored as
null that becomes an object crashes it ("Failed to persist state"), and keys a run stops writing
survive. A list only ever replaces the stored value. States from older versions (`in_flight_job`
dict plus `in_flight_jobs_ahead` list) are still read; `in_flight_job` is then written as null and
`in_flight_jobs_ahead` as [] so stale entries cannot come back.
"""

from __future__ import annotations

import typing as t

from tap_intercom_export.jobs.windows import Window
from tap_intercom_export.timeutil import iso, unix

if t.TYPE_CHECKING:
    import logging

IN_FLIGHT = "in_flight_jobs"
LEGACY_FIRST = "in_flight_job"
LEGACY_AHEAD = "in_flight_jobs_ahead"


class OpenJobs:
    """Jobs by window, read from and written back to one stream's state dict."""

    def __init__(self, jobs: dict[Window, str] | None = None) -> None:
        """Start from `jobs` (window -> job id)."""
        self.jobs = dict(jobs or {})

    @classmethod
    def from_state(cls, state: t.Mapping[str, t.Any], logger: logging.Logger) -> OpenJobs:
        """The jobs a previous run left in `state` (unreadable entries are logged and skipped)."""
        if isinstance(state.get(IN_FLIGHT), list):
            entries = list(state[IN_FLIGHT])
        else:
            entries = [state.get(LEGACY_FIRST), *(state.get(LEGACY_AHEAD) or [])]
        jobs: dict[Window, str] = {}
        for job in entries:
            if not isinstance(job, dict) or not job.get("job_identifier"):
                continue
            try:
                window = Window(unix(job["window_start"]), unix(job["window_end"]))
            except (KeyError, TypeError, ValueError):
                logger.warning("Ignoring unreadable in-flight export job in state: %s", job)
                continue
            jobs[window] = str(job["job_identifier"])
        return cls(jobs)

    def created(self, window: Window, job_id: str) -> None:
        """A new job for `window` replaces any job of the same (or a split parent) window."""
        self.jobs = {
            w: j for w, j in self.jobs.items() if w.end <= window.start or w.start >= window.end
        }
        self.jobs[window] = job_id

    def done(self, window: Window) -> None:
        """Every row up to `window`'s end is emitted: only jobs of later windows stay open."""
        self.jobs = {w: j for w, j in self.jobs.items() if w.start >= window.end}

    def state_values(self, state: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """The keys of `state` that mirror the open jobs, with their new values."""
        values: dict[str, t.Any] = {
            IN_FLIGHT: [
                {"job_identifier": job_id, "window_start": iso(w.start), "window_end": iso(w.end)}
                for w, job_id in sorted(self.jobs.items())
            ]
        }
        # Legacy keys only ever take values that replace what Meltano stored (never an object).
        if LEGACY_FIRST in state:
            values[LEGACY_FIRST] = None
        if LEGACY_AHEAD in state:
            values[LEGACY_AHEAD] = []
        return values
