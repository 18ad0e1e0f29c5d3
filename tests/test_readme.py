"""The README's promises: its first two commands, its settings table, its tested loader versions.

`python tests/test_readme.py` rewrites the settings table from `--about --format=markdown`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def section(text: str, name: str) -> str:
    """The text between `<!-- section:name -->` and its closing comment."""
    m = re.search(rf"<!-- section:{name} -->\n(.*?)<!-- /section:{name} -->", text, re.DOTALL)
    assert m, f"README has no {name} section"
    return m.group(1)


def about_settings_table() -> str:
    """The settings table of `tap-intercom-export --about --format=markdown`."""
    out = subprocess.run(
        [sys.executable, "-m", "tap_intercom_export", "--about", "--format=markdown"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    after = out.split("## Settings", 1)[1]
    lines = list(after.strip().splitlines())
    table = []
    for line in lines:
        if not line.startswith("|"):
            if table:
                break
            continue
        table.append(line)
    return "\n".join(table)


def readme_table(text: str) -> str:
    """The table lines of the README's settings section."""
    return "\n".join(
        line for line in section(text, "settings").splitlines() if line.startswith("|")
    )


def test_first_two_commands_are_the_demo_and_the_tests() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    assert first_block
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert (REPO / script).is_file()


def test_settings_table_matches_about_markdown() -> None:
    want = about_settings_table()
    assert want.startswith("| Setting | Required | Default | Description |")
    assert readme_table(README.read_text()) == want, (
        "README settings table is stale: run `.venv/bin/python tests/test_readme.py`"
    )


def test_tested_loader_versions_match_meltano_yml() -> None:
    text = section(README.read_text(), "production")
    project = (REPO / "meltano.yml").read_text()
    wrapper = (REPO / "loaders" / "target-duckdb-fixed" / "pyproject.toml").read_text()
    for pin in (
        "meltanolabs-target-postgres==0.8.1",
        "target-jsonl==0.1.4",
        "-e ./loaders/target-duckdb-fixed",
    ):
        assert pin in text and f"pip_url: {pin}" in project, pin
    for pin in ("target-duckdb==0.8.0", "duckdb==1.5.6"):
        assert pin in text and f'"{pin}"' in wrapper, pin
    meltano_version = re.search(
        r"MELTANO_VERSION=(\S+)", (REPO / "scripts" / "meltano-env.sh").read_text()
    )
    assert meltano_version and f"Meltano {meltano_version.group(1)}" in text


def rewrite() -> None:
    """Replace the README's settings table with the current `--about` one."""
    text = README.read_text()
    old = readme_table(text)
    body = section(text, "settings")
    README.write_text(text.replace(body, body.replace(old, about_settings_table()), 1))


if __name__ == "__main__":
    rewrite()
