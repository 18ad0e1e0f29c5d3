"""The Meltano plugin definition: generated from the tap, in step with meltano.yml, and usable.

`.venv/bin/python scripts/plugin_definition.py` regenerates plugin/extractors/tap-intercom-export.yml,
plugin/loaders/target-duckdb.yml and meltano.yml's extractor block; these tests fail when any of them
has drifted from the tap's settings. What a user does with the files (`meltano init`, `meltano add
... --from-ref`, `meltano config list`, `meltano run`) is tests/test_quickstart.py: the README's
quick start, run as written.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from typing import TYPE_CHECKING

import yaml

from tap_intercom_export.tap import TapIntercomExport
from tests.meltano_harness import REPO

if TYPE_CHECKING:
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
