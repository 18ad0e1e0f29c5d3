"""The Meltano plugin definition: generated from the tap, in step with meltano.yml, and usable.

`.venv/bin/python scripts/plugin_definition.py` regenerates plugin/extractors/tap-intercom-export.yml,
plugin/loaders/target-duckdb.yml and meltano.yml's extractor block; these tests fail when any of them
has drifted from the tap's settings. The last test is what a user does: `meltano init`, `meltano add
... --from-ref` the file (INTERCOM_EXPORT_CLONE naming this checkout), `meltano config list`,
`meltano run`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from typing import TYPE_CHECKING

import pytest
import yaml
from fake_intercom import build

from tap_intercom_export.tap import TapIntercomExport
from tests.meltano_harness import REPO, meltano_for
from tests.oracle import unix

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

DAY = 86400
TOKEN = "from-ref-token"


@functools.lru_cache(maxsize=1)
def generator() -> ModuleType:
    """scripts/plugin_definition.py, imported from its path (scripts/ is not a package)."""
    path = REPO / "scripts" / "plugin_definition.py"
    spec = importlib.util.spec_from_file_location("plugin_definition", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def definition() -> dict:
    """The committed extractor definition."""
    return yaml.safe_load(generator().EXTRACTOR_FILE.read_text())


def test_generated_files_match_the_tap(capsys) -> None:
    assert generator().main(["--check"]) == 0, capsys.readouterr().out


def test_definition_declares_every_setting_of_the_tap_with_a_description() -> None:
    settings = {s["name"]: s for s in definition()["settings"]}
    assert set(TapIntercomExport.config_jsonschema["properties"]) <= set(settings)
    assert set(settings) == set(generator().about()["settings"]["properties"])
    assert all(s.get("description") and s.get("label") and s.get("kind") for s in settings.values())
    assert [n for n, s in settings.items() if s.get("sensitive")] == ["access_token"]
    assert definition()["settings_group_validation"] == [["access_token"]]


def test_meltano_yml_runs_the_same_definition_from_the_checkout() -> None:
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    (tap,) = project["plugins"]["extractors"]
    hub_only = ("label", "description", "docs", "repo", "pip_url")
    assert tap == {
        **{k: v for k, v in definition().items() if k not in hub_only},
        "pip_url": "-e .",
    }
    scripts = re.search(
        r"\[project\.scripts\]\n(.*?)\n\n", (REPO / "pyproject.toml").read_text(), re.DOTALL
    )
    assert scripts and f"{tap['executable']} =" in scripts.group(1)


def test_loader_definition_runs_the_fixed_command() -> None:
    duck = yaml.safe_load(generator().LOADER_FILE.read_text())
    assert duck["executable"] == "target-duckdb-intercom"
    assert duck["pip_url"] == "-e ${INTERCOM_EXPORT_CLONE}/loaders/target-duckdb-fixed"


def test_definitions_install_the_clone_the_variable_names() -> None:
    assert definition()["pip_url"] == "-e ${INTERCOM_EXPORT_CLONE}"
    for path in (generator().EXTRACTOR_FILE, generator().LOADER_FILE):
        text = path.read_text()
        # The header's command is the README's (no `meltano add extractor NAME` form, which
        # Meltano 4.4.1 takes as two plugin names), and no placeholder repository.
        assert "meltano add --plugin-type " in text and "OWNER" not in text


JSONL = {"name": "target-jsonl", "namespace": "target_jsonl", "pip_url": "target-jsonl==0.1.4",
         "executable": "target-jsonl", "settings": [{"name": "destination_path", "kind": "string"},
                                                    {"name": "do_timestamp_file", "kind": "boolean"}]}  # fmt: skip


@pytest.mark.e2e
def test_meltano_add_from_ref_in_a_new_project_lists_every_setting_and_runs(tmp_path: Path) -> None:
    meltano = meltano_for(tmp_path, project=tmp_path)
    del meltano.env["MELTANO_PROJECT_ROOT"]  # a new project, found from the working directory
    db = tmp_path / "meltano.db"
    meltano("init", "project", "--no_usage_stats", db=db)
    meltano.project = tmp_path / "project"
    # The file as committed: it installs the clone INTERCOM_EXPORT_CLONE names (this checkout).
    meltano.env["INTERCOM_EXPORT_CLONE"] = str(REPO)
    ref = generator().EXTRACTOR_FILE
    jsonl = tmp_path / "target-jsonl.yml"
    jsonl.write_text(yaml.safe_dump(JSONL))
    meltano(
        "add", "--plugin-type", "extractor", "tap-intercom-export", "--from-ref", str(ref), db=db
    )
    meltano("add", "--plugin-type", "loader", "target-jsonl", "--from-ref", str(jsonl), db=db)

    token = {"TAP_INTERCOM_EXPORT_ACCESS_TOKEN": TOKEN}
    listed = meltano("config", "list", "tap-intercom-export", "--all", db=db, env=token)
    for s in definition()["settings"]:
        assert f"\t{s['label']}: {s['description']}" in listed, s["name"]
        assert re.search(
            rf"^{s['name']} \[env: TAP_INTERCOM_EXPORT_{s['name'].upper()}\]", listed, re.MULTILINE
        ), s["name"]
    assert re.search(r"^access_token .* current value: \(redacted\)", listed, re.MULTILINE)
    assert TOKEN not in listed

    start, end = unix("2023-10-25T00:00:00Z"), unix("2023-11-01T00:00:00Z")
    api = build(token=TOKEN, start=start - DAY, end=end + DAY, receipts_per_day=6)
    api.start()
    try:
        out = tmp_path / "out"
        out.mkdir()
        env = {
            "TAP_INTERCOM_EXPORT_ACCESS_TOKEN": TOKEN,
            "TAP_INTERCOM_EXPORT_API_URL": api.url,
            "TAP_INTERCOM_EXPORT_START_DATE": "2023-10-25T00:00:00Z",
            "TAP_INTERCOM_EXPORT_END_DATE": "2023-11-01T00:00:00Z",
            "TAP_INTERCOM_EXPORT_EXPORT_POLL_INTERVAL_SECONDS": "1",
            "TAP_INTERCOM_EXPORT__SELECT": json.dumps(
                ["message_export_jobs.*", "message_receipts.*"]
            ),
            "TARGET_JSONL_DESTINATION_PATH": str(out),
            "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
        }
        meltano("run", "tap-intercom-export", "target-jsonl", db=db, env=env)
        served = api.exports.dataset.rows("receipt", start, end - 1)
    finally:
        api.stop()
    landed = {p.stem: len(p.read_text().splitlines()) for p in out.glob("*.jsonl")}
    assert landed == {"message_export_jobs": 1, "message_receipts": len(served)}
    assert len(served) == 7 * 6
