"""meltano.yml stays true to the tap: capabilities, executable, and the pinned loaders.

The extractor block itself is generated with the plugin definition
(`.venv/bin/python scripts/plugin_definition.py`; tests/test_plugin_definition.py checks it).
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


def test_extractor_definition_matches_the_package() -> None:
    tap = plugin("extractors", "tap-intercom-export")
    assert tap["capabilities"] == about()["capabilities"]
    assert {
        "catalog",
        "discover",
        "state",
        "about",
        "stream-maps",
        "schema-flattening",
        "batch",
    } <= set(tap["capabilities"])
    assert tap["namespace"] == "tap_intercom_export"
    assert tap["pip_url"] == "-e ."
    scripts = re.search(
        r"\[project\.scripts\]\n(.*?)\n\n", (REPO / "pyproject.toml").read_text(), re.DOTALL
    )
    assert scripts and f"{tap['executable']} =" in scripts.group(1)
    assert tap["settings_group_validation"] == [[n for n, s in about()["settings"]["properties"].items()
                                                 if n in about()["settings"].get("required", [])]]  # fmt: skip
    assert "version" not in PROJECT  # deprecated top-level key


def test_loaders_are_pinned_to_the_tested_versions() -> None:
    assert plugin("loaders", "target-postgres")["pip_url"] == "meltanolabs-target-postgres==0.8.1"
    # COPY is what makes BATCH into PostgreSQL pay off (README, "End to end"); the meltano run
    # tests into PostgreSQL load through it.
    assert plugin("loaders", "target-postgres")["config"]["use_copy"] is True
    assert plugin("loaders", "target-jsonl")["pip_url"] == "target-jsonl==0.1.4"
    duck = plugin("loaders", "target-duckdb")
    assert duck["pip_url"] == "-e ./loaders/target-duckdb-fixed"
    wrapper = (REPO / "loaders" / "target-duckdb-fixed" / "pyproject.toml").read_text()
    assert '"target-duckdb==0.8.0"' in wrapper and '"duckdb==1.5.6"' in wrapper
    # The wrapper's command has a name of its own (upstream's `target-duckdb` shares its bin/),
    # and that is the command Meltano runs.
    assert 'target-duckdb-intercom = "target_duckdb_fixed:main"' in wrapper
    assert not re.search(r"^target-duckdb\s*=", wrapper, re.MULTILINE)
    assert duck["executable"] == "target-duckdb-intercom"


def test_batch_config_says_which_loaders_take_batch() -> None:
    """Issue 12: `meltano config` and the Hub tell users when BATCH pays off, not the SDK's stock text."""
    batch = next(s for s in plugin("extractors", "tap-intercom-export")["settings"]
                 if s["name"] == "batch_config")  # fmt: skip
    assert batch["description"] == about()["settings"]["properties"]["batch_config"]["description"]
    assert "target-postgres with use_copy" in batch["description"]
    assert "unset (RECORD) for target-duckdb" in batch["description"]


def test_demo_environment_needs_only_the_api_url() -> None:
    demo = next(e for e in PROJECT["environments"] if e["name"] == "demo")
    tap = next(
        p for p in demo["config"]["plugins"]["extractors"] if p["name"] == "tap-intercom-export"
    )
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
    upstream = "COPY {} FROM '{}' WITH (new_line '\\r\\n')".format("tmp_s", "/t/tmp_s.csv")
    assert (
        fixed.fix_copy(upstream)
        == "COPY tmp_s FROM '/t/tmp_s.csv' WITH (header false, new_line '\\r\\n')"
    )


def test_fix_leaves_other_statements_and_a_fixed_upstream_alone(fixed) -> None:
    for sql in [
        "SELECT 1",
        "CREATE TABLE t (a int)",
        "COPY t FROM 'f' WITH (HEADER 0, new_line '\\r\\n')",
    ]:
        assert fixed.fix_copy(sql) == sql


def test_fix_refuses_a_copy_it_does_not_understand(fixed) -> None:
    with pytest.raises(RuntimeError, match="cannot add header false"):
        fixed.fix_copy("COPY t FROM 'f.csv'")
