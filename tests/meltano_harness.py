"""Running Meltano from tests: the pinned binary, a clean environment, a project and a system dir.

Meltano comes from .venv-meltano (scripts/test.sh installs it). Every caller gives Meltano a
system directory of its own (MELTANO_SYS_DIR_ROOT), so that no test installs plugins into another
test's venvs; the uv cache is shared (the work tree's .cache/uv, as in scripts/meltano-env.sh), so
installs after the first are quick and meet a warm cache as users' second installs do.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def require(ok: bool, how: str) -> None:  # noqa: FBT001 - reads as require(condition, how)
    """Fail the test, never skip it, when a tool it needs is missing; `how` says how to get it.

    A skipped end-to-end test reads as green on a developer's machine: the suite either runs
    them or says what to install.
    """
    if not ok:
        pytest.fail(how)


def ensure_meltano(path: Path) -> None:
    """Install the pinned Meltano as scripts/test.sh does (a warm uv cache makes it seconds)."""
    if path.exists():
        return
    proc = subprocess.run(
        ["bash", "-c", ". scripts/meltano-env.sh && ensure_meltano"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    require(
        proc.returncode == 0 and path.exists(),
        f"Meltano is not installed at {path} and installing it failed: run bash scripts/test.sh "
        f"(it installs Meltano into .venv-meltano).\n{proc.stderr[-2000:]}",
    )


@dataclass
class Meltano:
    """A Meltano project (the repository's unless told) with plugins in a system dir of its own."""

    bin: Path
    sys_dir: Path
    env: dict[str, str]
    project: Path = REPO

    def run(
        self, *args: str, db: Path, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run a meltano command with its own system database; the finished process."""
        full_env = {**self.env, "MELTANO_DATABASE_URI": f"sqlite:///{db}", **(env or {})}
        return subprocess.run(
            [str(self.bin), *args], cwd=self.project, env=full_env, input=stdin,
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    def start(
        self, *args: str, db: Path, env: dict[str, str], out: t.IO[str]
    ) -> subprocess.Popen[str]:
        """Start a meltano command in the background, its output (both streams) into `out`."""
        full_env = {**self.env, "MELTANO_DATABASE_URI": f"sqlite:///{db}", **env}
        return subprocess.Popen(
            [str(self.bin), *args], cwd=self.project, env=full_env, stdout=out,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def __call__(
        self, *args: str, db: Path, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> str:
        """Run a meltano command; its output, or a test failure showing the output's tail."""
        proc = self.run(*args, db=db, env=env, stdin=stdin)
        if proc.returncode:
            out = (proc.stdout + proc.stderr)[-6000:]
            pytest.fail(f"meltano {' '.join(args)} exited {proc.returncode}:\n{out}")
        return proc.stdout + proc.stderr

    def venv_bin(self, kind: str, plugin: str) -> Path:
        """The bin/ of a plugin's venv, as Meltano installed it."""
        return self.sys_dir / kind / plugin / "venv" / "bin"

    def python(self, loader: str) -> Path:
        """The Python of a loader's venv, to query what it wrote with its own driver."""
        return self.venv_bin("loaders", loader) / "python"

    def executable(self, kind: str, plugin: str) -> Path:
        """The command Meltano runs for a plugin: its venv's bin/ plus the project's `executable`."""
        project = yaml.safe_load((self.project / "meltano.yml").read_text())
        entry = next(p for p in project["plugins"][kind] if p["name"] == plugin)
        return self.venv_bin(kind, plugin) / entry.get("executable", plugin)


def clean_env() -> dict[str, str]:
    """This process's environment without settings that would leak into the runs."""
    prefixes = ("TAP_INTERCOM_EXPORT_", "TARGET_", "MELTANO_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def meltano_for(base: Path, project: Path = REPO) -> Meltano:
    """Meltano for `project`, with its system dir under `base`; installed first if missing."""
    default = REPO / ".venv-meltano" / "bin" / "meltano"
    path = Path(os.environ.get("MELTANO_BIN") or default)
    ensure_meltano(path)
    env = {
        **clean_env(),
        "MELTANO_PROJECT_ROOT": str(project),
        "MELTANO_SYS_DIR_ROOT": str(base / "sys"),
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DISABLE_TRACKING": "true",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "1",
        "MELTANO_CLI_LOG_LEVEL": "info",
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR") or str(REPO / ".cache" / "uv"),
    }
    return Meltano(path, base / "sys", env, project)


def py_query(python: Path, script: str, *args: str) -> t.Any:
    """Run `script` (which prints JSON) with a loader venv's Python; the parsed output."""
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
