"""The catalog the tap promises: every stream's name, keys and schema, as a reviewed file.

A column's name or type is what a warehouse table is built from: a change to any schema (a
renamed stream, a column typed otherwise, a key dropped, a description) shows here as a diff of
`tests/data/catalog.json` to review, instead of reaching loaders unnoticed. Streams come from
discovery against the fake (its reporting datasets included). After an intended change:
`UPDATE_CATALOG=1 .venv/bin/python -m pytest tests/test_catalog_snapshot.py`, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import export_config

SNAPSHOT = Path(__file__).parent / "data" / "catalog.json"


def promised(catalog: dict) -> dict:
    """What a loader sees of each stream (selection metadata left out: it is the user's)."""
    return {
        entry["tap_stream_id"]: {
            "key_properties": entry.get("key_properties"),
            "replication_key": entry.get("replication_key"),
            "replication_method": entry.get("replication_method"),
            "schema": entry["schema"],
        }
        for entry in catalog["streams"]
    }


def test_the_catalog_is_the_one_reviewed(make_fake) -> None:
    tap = TapIntercomExport(config=export_config(make_fake()), validate_config=False)
    found = json.loads(json.dumps(promised(tap.catalog_dict)))  # tuples as the file has them
    text = json.dumps(found, indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_CATALOG"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert sorted(found) == sorted(expected), "streams added or removed: see the module docstring"
    for name, stream in expected.items():
        assert found[name] == stream, f"{name} changed: see the module docstring"
