"""Command-line entry point: the SDK's CLI, with every bad input ending in one line and exit 1.

The files given with --config, --state and --catalog are read here first, so that a file that
is not JSON, or not a JSON object, is named with what to do instead of ending in a traceback
from deep inside the SDK. What they hold is checked by the tap itself (settings.py for the
settings, tap.py for the state's shape and the catalog's streams).
"""

from __future__ import annotations

import json
import logging
import sys
import typing as t

from singer_sdk.exceptions import FatalAPIError

from tap_intercom_export.errors import InputFileError, IntercomError
from tap_intercom_export.tap import TapIntercomExport

# What each file option should hold, for the error that says what to pass instead.
_EXPECTED = {
    "--config": 'a JSON object of settings, e.g. {"access_token": "..."}',
    "--state": (
        'the state Meltano or the tap\'s last STATE message wrote, e.g. {"bookmarks": {...}}'
        " (leave --state out for a first run)"
    ),
    "--catalog": "a catalog written by `tap-intercom-export --config ... --discover`",
}


def file_options(argv: t.Sequence[str]) -> list[tuple[str, str]]:
    """The (option, path) pairs of --config, --state and --catalog in `argv`, in order."""
    found = []
    args = iter(argv)
    for arg in args:
        option, eq, value = arg.partition("=")
        if option not in _EXPECTED:
            continue
        path = value if eq else next(args, None)
        if path is not None and not (option == "--config" and path == "ENV"):
            found.append((option, path))
    return found


def _kind(value: object) -> str:
    names = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(type(value), "a number")


def check_file(option: str, path: str) -> None:
    """Refuse a file that cannot be read, is not JSON or is not a JSON object, in one line."""
    expected = _EXPECTED[option]
    try:
        with open(path, encoding="utf-8") as handle:  # noqa: PTH123 - a path as the user typed it
            value = json.load(handle)
    except OSError as exc:
        msg = f"{option} {path}: cannot read it ({exc.strerror or exc}). Pass {expected}."
        raise InputFileError(msg) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        msg = f"{option} {path} is not JSON ({exc}). Pass {expected}."
        raise InputFileError(msg) from exc
    if not isinstance(value, dict):
        msg = f"{option} {path} holds {_kind(value)}, not a JSON object. Pass {expected}."
        raise InputFileError(msg)
    if option == "--catalog" and not isinstance(value.get("streams"), list):
        msg = f'{option} {path} has no "streams" list. Pass {expected}.'
        raise InputFileError(msg)


def fail(exc: BaseException) -> t.NoReturn:
    """Print one line on stderr and exit 1; the traceback is logged at DEBUG only."""
    logging.getLogger(TapIntercomExport.name).debug("Failure details", exc_info=exc)
    print(f"tap-intercom-export: error: {exc}", file=sys.stderr, flush=True)  # noqa: T201
    sys.exit(1)


def main() -> None:
    """Run the tap; a known failure prints one actionable line and exits 1, without a traceback.

    A run stopped by SIGTERM or SIGINT exits 143 or 130 (tap.py), after its last STATE.
    """
    try:
        for option, path in file_options(sys.argv[1:]):
            check_file(option, path)
        TapIntercomExport.cli()
    except (IntercomError, FatalAPIError) as exc:
        fail(exc)
