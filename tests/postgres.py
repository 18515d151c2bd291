"""A real, throwaway PostgreSQL server for the multi-machine tests.

Optuna's RDB storage behaves differently on PostgreSQL than on SQLite (real concurrent
writers, scram password logins, connections dropped when the server restarts), so the tests
that cover `postgresql://` storage URLs run against a genuine server, not a mock. The server
is built from the PostgreSQL binaries already on the machine (Debian's
/usr/lib/postgresql/*/bin): `initdb` makes a cluster in a fresh directory under /tmp and
`pg_ctl` starts it on a free 127.0.0.1 port with durability switched off, so it comes up in a
few seconds.

PostgreSQL refuses to run as root. When the tests run as root its programs are run as the
`postgres` user (`runuser -u postgres -- ...`), and the cluster directory lives in /tmp rather
than under pytest's tmp_path, whose parents the `postgres` user cannot enter.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_USER = "finscale"
HOST = "127.0.0.1"
SYSTEM_USER = "postgres"  # the account that runs PostgreSQL when the tests run as root
LOG_TAIL_LINES = 30


def _has_tools(bin_dir: Path) -> bool:
    return (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file()


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/VERSION/bin, so that 15 beats 9.6."""
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def find_bin_dir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`, or None where PostgreSQL is not installed.

    The highest version under /usr/lib/postgresql/*/bin (Debian's layout, which keeps them
    off PATH), else `pg_config --bindir`, else the directory of `initdb` on PATH.
    """
    debian = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if _has_tools(d)]
    if debian:
        return max(debian, key=_version_key)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            if out and _has_tools(Path(out)):
                return Path(out)
    initdb = shutil.which("initdb")
    if initdb and _has_tools(Path(initdb).resolve().parent):
        return Path(initdb).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only.

    `start()` creates the cluster the first time and starts it; `stop()`, `restart()` (same
    port, open client connections are dropped) and `cleanup()` (stop, then delete everything).
    Logins over TCP need the password (scram-sha-256); `url()` and `create_database()` give
    SQLAlchemy/psycopg-style URLs.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = Path(bin_dir)
        self.user = PG_USER
        # Distinctive, so tests can assert that it never leaks into logs or output files.
        self.password = "pw-" + secrets.token_hex(12)
        self.host = HOST
        self.port: int | None = None
        self.base_dir: Path | None = None
        self.running = False
        self._as_root = os.geteuid() == 0

    # -- paths -------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base() / "sock"

    @property
    def log_file(self) -> Path:
        return self._base() / "server.log"

    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("PostgresServer.start() has not been called")
        return self.base_dir

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster (first call only) and start it; a no-op while it runs."""
        if self.running:
            return
        if self.base_dir is None:
            self._init_cluster()
        self._pg(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200",
        )
        self.running = True

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are terminated)."""
        if not self.running:
            return
        self._pg("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")
        self.running = False

    def restart(self) -> None:
        """Stop and start again on the same port, dropping every open client connection."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server if it runs and delete its directory. Safe to call twice."""
        if self.base_dir is None:
            return
        try:
            self.stop()
        except RuntimeError:
            # Last resort, so a half-dead server does not outlive the test session.
            with contextlib.suppress(RuntimeError):
                self._pg("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
            self.running = False
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    # -- clients -----------------------------------------------------------------------------

    def url(self, database: str = "postgres", password: bool = True) -> str:
        """`postgresql://finscale[:PASSWORD]@127.0.0.1:PORT/DATABASE`."""
        if self.port is None:
            raise RuntimeError("PostgresServer.start() has not been called")
        credentials = f"{self.user}:{self.password}" if password else self.user
        return f"postgresql://{credentials}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database called `name` and return its URL (with the password)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), connect_timeout=30, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    # -- internals ---------------------------------------------------------------------------

    def _init_cluster(self) -> None:
        owner = self._owner()
        self.port = _free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="finscale-pg-", dir="/tmp"))
        atexit.register(self.cleanup)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self.socket_dir.mkdir(mode=0o700)
        if owner is not None:
            for path in (self.base_dir, pwfile, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        try:
            self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _owner(self) -> pwd.struct_passwd | None:
        """The `postgres` account when running as root (PostgreSQL refuses root), else None."""
        if not self._as_root:
            return None
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise RuntimeError(
                f"running as root, but there is no {SYSTEM_USER!r} user to run PostgreSQL as"
            ) from None

    def _pg(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        # No PG* variables from the caller (PGDATA, PGPORT, ...) may steer the programs; the
        # working directory must be one the `postgres` user can enter.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        label = program + (f" {args[0]}" if args and not args[0].startswith("-") else "")
        try:
            result = subprocess.run(
                command,
                cwd=self.base_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{label} timed out{self._log_tail()}") from exc
        if result.returncode != 0:
            raise RuntimeError(
                f"{label} failed (exit {result.returncode}):\n"
                f"{result.stderr.strip() or result.stdout.strip()}{self._log_tail()}"
            )
        return result

    def _log_tail(self) -> str:
        if self.base_dir is None or not self.log_file.is_file():
            return ""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return ""
        return "\n--- last lines of the server log ---\n" + "\n".join(lines)
