"""A throwaway PostgreSQL server on 127.0.0.1 for the `meltano run` into target-postgres test.

Started from the machine's server binaries (.ci/run installs them; PG_BIN overrides where they
are looked for) in a temporary directory, and stopped and removed after the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.meltano_harness import require


def _pg_bindir() -> Path | None:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    """A throwaway PostgreSQL server on loopback."""

    port: int
    user: str
    password: str
    database: str


@pytest.fixture(scope="session")
def postgres() -> t.Iterator[Postgres]:
    """Initdb + pg_ctl start on 127.0.0.1 in a temporary directory; stopped and removed after."""
    bindir = _pg_bindir()
    require(
        bindir is not None and (bindir / "initdb").exists(),
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: "
        "apt-get install postgresql, as .ci/run does) or set PG_BIN to their directory",
    )
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="e2e-pg-"))
    # The server refuses to run as root: run it as an unprivileged account that owns the dir.
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = next(a for a in ("postgres", "nobody") if _has_account(a))
        shutil.chown(root, user=account)
        as_user = ["runuser", "-u", account, "--"]
    password = "e2e-secret"
    (root / "pw").write_text(password)
    shutil.chown(root / "pw", user=_owner(root))
    data, sock, log = root / "data", root / "sock", root / "log"

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120
        )

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "scram-sha-256",
        f"--pwfile={root / 'pw'}", "--no-sync", "-E", "UTF8")  # fmt: skip
    run("mkdir", str(sock))
    port = _free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off"
    try:
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(
            f"PostgreSQL did not start: {exc.stderr}\n{log.read_text() if log.exists() else ''}"
        )
    try:
        env = {**os.environ, "PGPASSWORD": password}
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "warehouse"],
                       check=True, env=env, capture_output=True, timeout=60)  # fmt: skip
        yield Postgres(port, "postgres", password, "warehouse")
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, check=False)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _has_account(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _owner(path: Path) -> str:
    import pwd

    return pwd.getpwuid(path.stat().st_uid).pw_name
