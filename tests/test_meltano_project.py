"""meltano.yml stays true to the tap: settings one for one, capabilities, and the pinned loaders.

`python tests/test_meltano_project.py` rewrites the extractor's settings in meltano.yml from
`tap-intercom-export --about`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tap_intercom_export.tap import TapIntercomExport

REPO = Path(__file__).resolve().parents[1]
PROJECT = yaml.safe_load((REPO / "meltano.yml").read_text())


def plugin(kind: str, name: str) -> dict:
    """One plugin of meltano.yml."""
    return next(p for p in PROJECT["plugins"][kind] if p["name"] == name)


@functools.lru_cache(maxsize=1)
def about() -> dict:
    """`tap-intercom-export --about --format=json`, as users and Meltano Hub see it."""
    out = subprocess.run(
        [sys.executable, "-m", "tap_intercom_export", "--about", "--format=json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return json.loads(out.stdout)


def meltano_kind(schema: dict) -> str:
    """The Meltano setting kind for a JSON schema property."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    if "enum" in schema:
        return "options"
    if schema.get("format") == "date-time":
        return "date_iso8601"
    if "number" in types:
        # Meltano 4.4.1 crashes writing a `decimal` setting that came from an env var or
        # `meltano config set` (Decimal is not JSON serializable): numbers are whole in Meltano.
        return "integer"
    return {"integer": "integer", "boolean": "boolean", "object": "object", "array": "array"}.get(
        types[0] if types else "", "string"
    )


def expected_setting(name: str, schema: dict) -> dict:
    """The meltano.yml entry that mirrors one property of the tap's config schema."""
    entry = {"name": name, "kind": meltano_kind(schema), "label": schema.get("title"),
             "description": schema.get("description")}  # fmt: skip
    if schema.get("secret"):
        entry["sensitive"] = True
    if "enum" in schema:
        entry["options"] = [v for v in schema["enum"] if v is not None]
    return {k: v for k, v in entry.items() if v is not None}


def test_extractor_settings_mirror_config_jsonschema_one_for_one() -> None:
    properties = about()["settings"]["properties"]
    # The SDK's built-in settings are part of --about and belong in meltano.yml too.
    assert set(TapIntercomExport.config_jsonschema["properties"]) <= set(properties)
    declared = plugin("extractors", "tap-intercom-export")["settings"]
    got = []
    for s in declared:
        entry = {k: s[k] for k in ("name", "kind", "label", "description", "sensitive") if k in s}
        if "options" in s:
            entry["options"] = [o["value"] for o in s["options"]]
        got.append(entry)
    want = [expected_setting(name, schema) for name, schema in properties.items()]
    missing = [w for w in want if w["name"] not in {g["name"] for g in got}]
    assert not missing, "meltano.yml lacks these settings of the tap; add:\n" + yaml.safe_dump(missing, sort_keys=False)
    assert [g["name"] for g in got] == [w["name"] for w in want], "same settings, in the tap's order"
    for g, w in zip(got, want):
        assert g == w, f"meltano.yml setting {w['name']} differs from the tap's config schema"


def test_extractor_definition_matches_the_package() -> None:
    tap = plugin("extractors", "tap-intercom-export")
    assert tap["capabilities"] == about()["capabilities"]
    assert {"catalog", "discover", "state", "about", "stream-maps", "schema-flattening", "batch"} <= set(tap["capabilities"])
    assert tap["namespace"] == "tap_intercom_export"
    assert tap["pip_url"] == "-e ."
    scripts = re.search(r"\[project\.scripts\]\n(.*?)\n\n", (REPO / "pyproject.toml").read_text(), re.S)
    assert scripts and f"{tap['executable']} =" in scripts.group(1)
    assert tap["settings_group_validation"] == [[n for n, s in about()["settings"]["properties"].items()
                                                 if n in about()["settings"].get("required", [])]]  # fmt: skip
    assert "version" not in PROJECT  # deprecated top-level key


def test_loaders_are_pinned_to_the_tested_versions() -> None:
    assert plugin("loaders", "target-postgres")["pip_url"] == "meltanolabs-target-postgres==0.8.1"
    assert plugin("loaders", "target-jsonl")["pip_url"] == "target-jsonl==0.1.4"
    duck = plugin("loaders", "target-duckdb")
    assert duck["pip_url"] == "-e ./loaders/target-duckdb-fixed"
    wrapper = (REPO / "loaders" / "target-duckdb-fixed" / "pyproject.toml").read_text()
    assert '"target-duckdb==0.8.0"' in wrapper and '"duckdb==1.5.6"' in wrapper
    # The wrapper's command has a name of its own (upstream's `target-duckdb` shares its bin/),
    # and that is the command Meltano runs.
    assert 'target-duckdb-intercom = "target_duckdb_fixed:main"' in wrapper
    assert not re.search(r'^target-duckdb\s*=', wrapper, re.M)
    assert duck["executable"] == "target-duckdb-intercom"


def test_demo_environment_needs_only_the_api_url() -> None:
    demo = next(e for e in PROJECT["environments"] if e["name"] == "demo")
    tap = next(p for p in demo["config"]["plugins"]["extractors"] if p["name"] == "tap-intercom-export")
    assert tap["config"]["access_token"] == "demo-token"
    assert "demo-token" in (REPO / "scripts" / "demo.sh").read_text()


# -- The target-duckdb fix ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixed() -> object:
    """The wrapper module, imported from its source (it is installed only in Meltano's venv)."""
    path = REPO / "loaders" / "target-duckdb-fixed" / "target_duckdb_fixed" / "__init__.py"
    spec = importlib.util.spec_from_file_location("target_duckdb_fixed", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fix_adds_header_false_to_target_duckdb_080_copy(fixed) -> None:
    # The statement as target_duckdb/db_sync.py 0.8.0 builds it.
    upstream = "COPY {} FROM '{}' WITH (new_line '\\r\\n')".format("tmp_s", "/t/tmp_s.csv")  # noqa: UP032
    assert fixed.fix_copy(upstream) == "COPY tmp_s FROM '/t/tmp_s.csv' WITH (header false, new_line '\\r\\n')"


def test_fix_leaves_other_statements_and_a_fixed_upstream_alone(fixed) -> None:
    for sql in ["SELECT 1", "CREATE TABLE t (a int)", "COPY t FROM 'f' WITH (HEADER 0, new_line '\\r\\n')"]:
        assert fixed.fix_copy(sql) == sql


def test_fix_refuses_a_copy_it_does_not_understand(fixed) -> None:
    with pytest.raises(RuntimeError, match="cannot add header false"):
        fixed.fix_copy("COPY t FROM 'f.csv'")


def rewrite_settings() -> None:
    """Regenerate the extractor's `settings:` block of meltano.yml from the tap's config schema."""
    path = REPO / "meltano.yml"
    text = path.read_text()
    start = text.index("    settings:\n", text.index("- name: tap-intercom-export"))
    end = text.index("\n  loaders:", start)
    entries = []
    for name, schema in about()["settings"]["properties"].items():
        entry = expected_setting(name, schema)
        if "options" in entry:
            entry["options"] = [{"label": v, "value": v} for v in entry["options"]]
        entries.append(entry)
    body = yaml.safe_dump(entries, sort_keys=False, width=96, allow_unicode=True)
    block = "    settings:\n" + SETTINGS_NOTE + "".join(f"    {line}\n" for line in body.splitlines())
    path.write_text(text[:start] + block + text[end:])


SETTINGS_NOTE = """\
    # Generated by `python tests/test_meltano_project.py` from `tap-intercom-export --about`.
    # JSON numbers are `integer` here, not `decimal`: Meltano 4.4.1 cannot write a `decimal`
    # setting that came from an env var or `meltano config set` (Decimal is not JSON serializable).
"""


if __name__ == "__main__":
    rewrite_settings()
