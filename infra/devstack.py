#!/usr/bin/env python3
"""The local platform: install, start, stop and inspect every service the project needs.

    python3 infra/devstack.py up       install what is missing, start what is not running
    python3 infra/devstack.py down     stop what `up` started (by PID)
    python3 infra/devstack.py status   what runs where
    python3 infra/devstack.py test ... start what the tests need, run pytest, stop what it started

It starts with the system python3, before the project's virtualenv exists: until it has made
`.venv` (standard library only) it imports nothing else, then it runs itself again under
`.venv/bin/python` with the same arguments, where the layer (`feed_wiring.settings`) is installed.
`down` and `clean` on a machine without `.venv` do not build it: they stop what this state
folder's PID files name and need no settings. No Docker: PostgreSQL
and Redis come from Debian's packages, the MongoDB-compatible server is FerretDB 1.x built with
`go install`-style module download, the AWS emulator is `ministack` from PyPI in its own venv.
Every server binds 127.0.0.1 below port 32768 (the ephemeral range starts there) and keeps its
state under the git-ignored `.state/` folder (or $FEED_STATE_DIR). With the apps, `up` also
starts the monitoring: Prometheus (configuration in infra/monitoring/), a Pushgateway for the
scheduled jobs and the Redis and PostgreSQL exporters, all from Debian's packages.

`TOPOLOGY=scaled` (default `single`) also runs a Redis Cluster of 3 masters with a replica each
(ElastiCache cluster mode): one redis-server per port of REDIS_CLUSTER_PORTS (default
17001-17006, cluster bus REDIS_CLUSTER_BUS_OFFSET=100 above each), config, nodes.conf and data
under `.state/redis-cluster/<port>/`; created with `redis-cli --cluster create` the first time,
restarted from nodes.conf after. `down` and `status` also see the nodes that a PID file of this
state folder names, whatever TOPOLOGY says then.

A service whose configured host is not this machine, or whose port already answers without a
PID file of ours, is someone else's: it is used as it is and never started or stopped here.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import urlopen

if TYPE_CHECKING:  # imported at run time only under .venv (see load_settings)
    from feed_wiring.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
# The project's own distributions, installed editable into .venv: the layer and the tooling.
PROJECT_FILES = (ROOT / "layers" / "feed_core" / "pyproject.toml", ROOT / "pyproject.toml")
# Set for the run under .venv that `bootstrap` starts: a second bootstrap would loop.
BOOTSTRAPPED = "FEED_DEVSTACK_BOOTSTRAPPED"

FERRETDB_VERSION = "v1.24.2"
MINISTACK_VERSION = "1.5.33"
MINISTACK_REQUIREMENTS = (
    f"ministack=={MINISTACK_VERSION}",
    "aws-sam-translator==1.115.0",
    "cryptography==50.0.2",
)
PYTHON = sys.executable
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MONITORING_DIR = ROOT / "infra" / "monitoring"
# Monitoring ports (environment name -> default): Debian's defaults, all below 32768.
MONITORING_PORTS = {
    "PROMETHEUS_PORT": 9090,
    "PUSHGATEWAY_PORT": 9091,
    "FANOUT_WORKER_METRICS_PORT": 9102,
    "REDIS_EXPORTER_PORT": 9121,
    "POSTGRES_EXPORTER_PORT": 9187,
}
# Debian package -> the binary it installs.
MONITORING_PACKAGES = {
    "prometheus": "prometheus",  # also promtool (make test checks the alert rules with it)
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
}
# What only the benchmarks use (bench/http_read.py installs it when missing; `make up` does
# not): Debian package -> the binary it installs.
BENCH_PACKAGES = {"wrk": "wrk"}


def monitoring_port(name: str) -> int:
    return int(os.environ.get(name) or MONITORING_PORTS[name])


# TOPOLOGY=scaled also runs a Redis Cluster (ElastiCache cluster mode): 3 masters with a replica
# each, one redis-server per port. Each node's cluster bus listens REDIS_CLUSTER_BUS_OFFSET above
# its port (Redis's own +10000 would leave the range below 32768 for ports above 22767).
TOPOLOGIES = ("single", "scaled")
DEFAULT_REDIS_CLUSTER_PORTS = "17001-17006"
DEFAULT_REDIS_CLUSTER_BUS_OFFSET = 100
REDIS_CLUSTER_REPLICAS = 1
EPHEMERAL_PORTS_START = 32768


def topology() -> str:
    value = (os.environ.get("TOPOLOGY") or "single").strip().lower()
    if value not in TOPOLOGIES:
        raise SystemExit(
            f"[devstack] TOPOLOGY must be one of {', '.join(TOPOLOGIES)}, got {value!r}"
        )
    return value


def parse_cluster_ports(spec: str, bus_offset: int = DEFAULT_REDIS_CLUSTER_BUS_OFFSET) -> list[int]:
    """REDIS_CLUSTER_PORTS: `17001-17006` or `17001,17002,...` (a mix works too). At least 6
    ports, an even number (a replica per master), distinct, and every port and its bus port
    (port + bus_offset) below 32768 and apart from every other."""
    ports: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                first, last = (int(x) for x in part.split("-", 1))
                if last < first:
                    raise ValueError
                ports.extend(range(first, last + 1))
            else:
                ports.append(int(part))
        except ValueError:
            raise ValueError(f"REDIS_CLUSTER_PORTS: {part!r} is not a port or a range") from None
    per_master = REDIS_CLUSTER_REPLICAS + 1
    if len(ports) < 3 * per_master or len(ports) % per_master:
        raise ValueError(
            f"REDIS_CLUSTER_PORTS: need at least {3 * per_master} ports, a multiple of "
            f"{per_master} (3 masters, {REDIS_CLUSTER_REPLICAS} replica each), got {len(ports)}"
        )
    if len(set(ports)) != len(ports):
        raise ValueError(f"REDIS_CLUSTER_PORTS: a port is listed twice in {spec!r}")
    if bus_offset <= 0:
        raise ValueError(f"REDIS_CLUSTER_BUS_OFFSET must be positive, got {bus_offset}")
    used = set(ports)
    for port in ports:
        bus = port + bus_offset
        if port < 1024 or bus >= EPHEMERAL_PORTS_START:
            raise ValueError(f"REDIS_CLUSTER_PORTS: port {port} (bus {bus}) is outside 1024..32767")
        if bus in used:
            raise ValueError(f"REDIS_CLUSTER_PORTS: bus port {bus} of {port} is a node's port")
    return ports


def cluster_bus_offset() -> int:
    raw = os.environ.get("REDIS_CLUSTER_BUS_OFFSET") or str(DEFAULT_REDIS_CLUSTER_BUS_OFFSET)
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(
            f"[devstack] REDIS_CLUSTER_BUS_OFFSET must be an integer: {raw!r}"
        ) from None


def cluster_node_timeout_ms() -> int:
    """REDIS_CLUSTER_NODE_TIMEOUT_MS (default 5000): how long a master may not answer before its
    replica takes over; the failover test shortens it."""
    return int(os.environ.get("REDIS_CLUSTER_NODE_TIMEOUT_MS") or 5000)


def cluster_ports_from_env() -> list[int]:
    spec = os.environ.get("REDIS_CLUSTER_PORTS") or DEFAULT_REDIS_CLUSTER_PORTS
    try:
        return parse_cluster_ports(spec, cluster_bus_offset())
    except ValueError as exc:
        raise SystemExit(f"[devstack] {exc}") from None


TOOLS_DIR = Path(os.environ.get("FEED_TOOLS_DIR", Path.home() / ".cache" / "feedplatform"))


def log(msg: str) -> None:
    print(f"[devstack] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Paths and process bookkeeping


@dataclass(frozen=True)
class Layout:
    state: Path

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "log"

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def layout_from_env() -> Layout:
    state = Path(os.environ.get("FEED_STATE_DIR", ROOT / ".state")).resolve()
    return Layout(state)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check, what: str, timeout: float = 30.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise SystemExit(f"[devstack] {what} did not answer within {timeout:.0f} s")


def stop_pid(pid: int, what: str, group: bool = True, timeout: float = 15.0) -> None:
    """SIGTERM the process (and its process group, which `spawn` made), then SIGKILL."""

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        log(f"{what} (pid {pid}) ignored SIGTERM; sending SIGKILL")
        send(signal.SIGKILL)
    # Reap if it is our child (make up and make down can run in the same process in tests).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def spawn(
    cmd: list[str],
    layout: Layout,
    name: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a long-running server in its own session, its output to .state/log/NAME.log."""
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.run.mkdir(parents=True, exist_ok=True)
    with open(layout.logfile(name), "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    layout.pidfile(name).write_text(f"{proc.pid}\n")
    return proc.pid


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kwargs)


# ---------------------------------------------------------------------------------------------
# Installation (idempotent; each step skips itself when already done)


def apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise SystemExit(
            f"[devstack] missing system packages {packages}; install them with "
            f"`sudo apt-get install -y {' '.join(packages)}` and run again"
        )
    log(f"installing Debian packages: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        env=env,
        stdout=subprocess.DEVNULL,
    )


def postgres_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    return candidates[0].parent if candidates else None


def ensure_system_packages(need_pg: bool, need_redis: bool) -> None:
    missing = []
    if need_pg and postgres_bindir() is None:
        missing += ["postgresql", "postgresql-contrib"]
    if need_redis and shutil.which("redis-server") is None:
        missing.append("redis-server")
    if missing:
        apt_install(missing)


def ensure_monitoring_packages() -> None:
    missing = [pkg for pkg, exe in MONITORING_PACKAGES.items() if shutil.which(exe) is None]
    if missing:
        apt_install(missing)


def ensure_bench_packages() -> None:
    missing = [pkg for pkg, exe in BENCH_PACKAGES.items() if shutil.which(exe) is None]
    if missing:
        apt_install(missing)


def file_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def ensure_project_venv() -> Path:
    """`.venv` with the layer (`feed-core`) and the tooling (`feed-platform[dev]`) installed
    editable, reinstalled when either pyproject.toml changes. Standard library only."""
    stamp = VENV / ".feed-deps-stamp"
    digest = file_digest(*PROJECT_FILES)
    if stamp.exists() and stamp.read_text() == digest:
        return VENV_PYTHON
    if not VENV_PYTHON.exists():
        log("creating .venv")
        run([PYTHON, "-m", "venv", str(VENV)])
    log("installing Python dependencies into .venv (first time takes about a minute)")
    run([str(VENV_PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    run(
        [
            str(VENV_PYTHON),
            *("-m", "pip", "install", "-q"),
            *("-e", str(ROOT / "layers" / "feed_core")),
            *("-e", f"{ROOT}[dev]"),
        ]
    )
    stamp.write_text(digest)
    return VENV_PYTHON


def in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def bootstrap(argv: list[str]) -> None:
    """Outside .venv: make it (or bring it up to date), then run this command again under
    `.venv/bin/python` with the same arguments. Does not return."""
    if os.environ.get(BOOTSTRAPPED):
        raise SystemExit(f"[devstack] {VENV_PYTHON} does not run inside {VENV}: remove .venv")
    python = ensure_project_venv()
    os.environ[BOOTSTRAPPED] = "1"
    os.execv(python, [str(python), str(Path(__file__).resolve()), *argv])


def load_settings() -> Settings:
    """The settings from the environment (needs the layer, so runs only under .venv)."""
    from feed_wiring.settings import Settings

    return Settings.from_env(os.environ)


def ensure_ferretdb() -> Path:
    """Build FerretDB from the Go module proxy once per machine (cached outside the repo).

    `go install ...@v1.24.2` builds, but the binary panics at start because the module does not
    ship build/version/version.txt (its release process generates it). So the module source is
    copied from the module cache, the version file written, and the command built there.
    """
    binary = TOOLS_DIR / "bin" / f"ferretdb-{FERRETDB_VERSION}"
    if binary.exists():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise SystemExit("[devstack] Go is needed to build FerretDB; install Go >= 1.24")
    log(f"building FerretDB {FERRETDB_VERSION} (first time only, about 1-2 minutes)")
    out = subprocess.run(
        [go, "mod", "download", "-json", f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=TOOLS_DIR if TOOLS_DIR.exists() else None,
    )
    moddir = Path(json.loads(out.stdout)["Dir"])
    src = TOOLS_DIR / "src" / f"ferretdb-{FERRETDB_VERSION}"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(moddir, src)
    for p in src.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    (src / "build" / "version" / "version.txt").write_text(f"{FERRETDB_VERSION}\n")
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(".tmp")
    run([go, "build", "-buildvcs=false", "-o", str(tmp), "./cmd/ferretdb"], cwd=src)
    tmp.rename(binary)
    shutil.rmtree(src, ignore_errors=True)
    return binary


def ensure_ministack() -> Path:
    """The AWS emulator in a venv of its own: it pins botocore, the project must not follow.

    Two of its optional dependencies are needed: `aws-sam-translator` to deploy SAM templates
    (the Serverless transform) and `cryptography` to verify RS256 tokens in the HTTP API's JWT
    authorizer (without it every token is refused). The stamp re-runs pip when this list
    changes, also in an existing venv.
    """
    venv = TOOLS_DIR / f"ministack-{MINISTACK_VERSION}"
    exe = venv / "bin" / "ministack"
    stamp = venv / ".feed-requirements"
    wanted = "\n".join(MINISTACK_REQUIREMENTS)
    if exe.exists() and stamp.exists() and stamp.read_text() == wanted:
        return exe
    log(f"installing ministack {MINISTACK_VERSION} into {venv}")
    if not (venv / "bin" / "python").exists():
        run([PYTHON, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *MINISTACK_REQUIREMENTS])
    stamp.write_text(wanted)
    return exe


# ---------------------------------------------------------------------------------------------
# Services


@dataclass
class Status:
    name: str
    where: str
    state: str  # "ours", "external", "stopped"
    pid: int | None = None


class Service:
    name = ""

    def __init__(self, settings: Settings, layout: Layout) -> None:
        self.settings = settings
        self.layout = layout

    # Overridden per service.
    host: str
    port: int

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS

    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def our_pid(self) -> int | None:
        return read_pid(self.layout.pidfile(self.name))

    def answers(self) -> bool:
        return port_open(self.host, self.port)

    def status(self) -> Status:
        pid = self.our_pid()
        if pid is not None:
            return Status(self.name, self.where(), "ours", pid)
        if self.answers():
            return Status(self.name, self.where(), "external")
        return Status(self.name, self.where(), "stopped")

    def needs_start(self) -> bool:
        st = self.status()
        if st.state != "stopped":
            return False
        if not self.local:
            raise SystemExit(
                f"[devstack] {self.name} at {self.where()} does not answer, and it "
                "is not on this machine, so it is not started here"
            )
        return True

    def install(self) -> None:
        """Install what `start` needs (idempotent)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> bool:
        pid = self.our_pid()
        if pid is None:
            self.layout.pidfile(self.name).unlink(missing_ok=True)
            return False
        stop_pid(pid, self.name)
        self.layout.pidfile(self.name).unlink(missing_ok=True)
        return True


def postgres_root(layout: Layout) -> Path:
    """`.state/postgres`, or a folder of the postgres user's when it cannot reach that one.

    As root, the cluster runs as the `postgres` system user, which cannot enter a checkout
    under a private home folder (/root is 0700); its own home folder always works.
    """
    preferred = layout.state / "postgres"
    if os.geteuid() != 0 or _postgres_user_can_enter(layout.state):
        return preferred
    tag = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path("/var/lib/postgresql") / f"feedplatform-{tag}"


def _postgres_user_can_enter(path: Path) -> bool:
    return (
        subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-x", str(path)],
            check=False,
            capture_output=True,
        ).returncode
        == 0
    )


def as_postgres_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the `postgres` system user,
    # from / (it may not be allowed into the current directory).
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", "env", "-C", "/", *cmd]
    return cmd


# Durability settings are relaxed: these clusters are for development and tests only. The
# standby needs max_connections no lower than its primary's.
POSTGRES_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    " -c full_page_writes=off -c max_connections=200"
)


def pg_ctl_start(datadir: Path, port: int, pgroot: Path, logfile: Path, extra: str = "") -> None:
    """Start a cluster (primary or standby) as the postgres user and wait until it accepts
    connections (a standby: once it has reached a consistent state)."""
    bindir = postgres_bindir()
    assert bindir is not None
    opts = f"-p {port} -k {pgroot} {POSTGRES_OPTIONS} {extra}".strip()
    run(
        as_postgres_owner(
            [
                *(str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts),
                *("-l", str(logfile), "-w", "-t", "30", "start"),
            ]
        ),
        stdout=subprocess.DEVNULL,
    )


def psql(pgroot: Path, port: int, user: str, sql: str, db: str = "postgres") -> str:
    """One statement through the cluster's Unix socket in `pgroot` (local trust), as the
    postgres user; its output unaligned, without headers."""
    out = subprocess.run(
        as_postgres_owner(
            ["psql", "-h", str(pgroot), "-p", str(port), "-U", user, "-d", db, "-tAc", sql]
        ),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def stop_postgres(layout: Layout, name: str = "data") -> bool:
    """Stop this state folder's cluster if it runs (needs no settings): the primary, or with
    `name="replica"` the standby."""
    datadir = postgres_root(layout) / name
    if read_pid(datadir / "postmaster.pid") is None:
        return False
    bindir = postgres_bindir()
    subprocess.run(
        as_postgres_owner([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"]),
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return True


class Postgres(Service):
    name = "postgres"

    @property
    def host(self) -> str:
        return self.settings.postgres_host

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    @property
    def pgroot(self) -> Path:
        return postgres_root(self.layout)

    @property
    def datadir(self) -> Path:
        return self.pgroot / "data"

    def our_pid(self) -> int | None:
        return read_pid(self.datadir / "postmaster.pid")

    def install(self) -> None:
        ensure_system_packages(need_pg=True, need_redis=False)

    def start(self) -> None:
        bindir = postgres_bindir()
        assert bindir is not None
        pgroot = self.pgroot
        pgroot.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(pgroot, "postgres", "postgres")
            if pgroot.parent != self.layout.state:
                # Say where the cluster went, so `make clean` users can find it.
                (self.layout.state / "postgres-location").write_text(f"{pgroot}\n")
        if not (self.datadir / "PG_VERSION").exists():
            log("initialising a PostgreSQL cluster")
            pwfile = pgroot / ".pw"
            pwfile.write_text(self.settings.postgres_password + "\n")
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres", "postgres")
            run(
                as_postgres_owner(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.datadir),
                        "-U",
                        self.settings.postgres_user,
                        f"--pwfile={pwfile}",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                stdout=subprocess.DEVNULL,
            )
            pwfile.unlink()
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        pg_ctl_start(self.datadir, self.port, pgroot, pgroot / "postgres.log")
        wait_until(self.answers, "PostgreSQL")
        self._ensure_databases(pgroot)

    def _ensure_databases(self, pgroot: Path) -> None:
        # The application database, the test database, and FerretDB's storage database.
        user = self.settings.postgres_user
        for db in (self.settings.postgres_db, "feed_test", "ferretdb"):
            exists = f"SELECT 1 FROM pg_database WHERE datname = '{db}'"
            if psql(pgroot, self.port, user, exists) != "1":
                psql(pgroot, self.port, user, f'CREATE DATABASE "{db}"')

    def stop(self) -> bool:
        return stop_postgres(self.layout)


REPLICA_NAME = "postgres-replica"


class PostgresReplica(Postgres):
    """`TOPOLOGY=scaled`: a streaming standby of the primary (hot_standby, read-only), cloned
    with pg_basebackup into `<postgres root>/replica` and run as the postgres user on
    POSTGRES_REPLICA_PORT; the application reads from it with POSTGRES_REPLICA_HOST set."""

    name = REPLICA_NAME

    @property
    def host(self) -> str:
        return self.settings.postgres_replica_host or "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.postgres_replica_port

    @property
    def datadir(self) -> Path:
        return self.pgroot / "replica"

    def receiver_status(self) -> str:
        """The standby's WAL receiver state (`streaming` when it follows the primary)."""
        try:
            return psql(
                self.pgroot,
                self.port,
                self.settings.postgres_user,
                "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'stopped')",
            )
        except subprocess.CalledProcessError:
            return "down"

    def streaming(self) -> bool:
        return self.receiver_status() == "streaming"

    def clone(self) -> None:
        """A base backup of the primary, with standby.signal and primary_conninfo (-R); WAL
        streamed alongside (-X stream) so the copy is consistent without archiving."""
        bindir = postgres_bindir()
        assert bindir is not None
        s = self.settings
        log(f"cloning the PostgreSQL primary {s.postgres_host}:{s.postgres_port} into a standby")
        shutil.rmtree(self.datadir, ignore_errors=True)
        run(
            as_postgres_owner(
                [
                    *(str(bindir / "pg_basebackup"), "-h", s.postgres_host),
                    *("-p", str(s.postgres_port), "-U", s.postgres_user, "-D", str(self.datadir)),
                    *("-R", "-X", "stream", "-c", "fast", "--no-password"),
                ]
            ),
            env={**os.environ, "PGPASSWORD": s.postgres_password},
            stdout=subprocess.DEVNULL,
        )

    def start(self, catch_up_seconds: float = 20.0) -> None:
        if not port_open(self.settings.postgres_host, self.settings.postgres_port):
            raise SystemExit("[devstack] the PostgreSQL replica needs its primary running")
        cloned = False
        if not (self.datadir / "PG_VERSION").exists():
            self.clone()
            cloned = True
        logfile = self.pgroot / "postgres-replica.log"
        pg_ctl_start(self.datadir, self.port, self.pgroot, logfile, "-c hot_standby=on")
        deadline = time.monotonic() + catch_up_seconds
        while time.monotonic() < deadline:
            if self.streaming():
                return
            time.sleep(0.1)
        if cloned:
            raise SystemExit(
                f"[devstack] the new PostgreSQL standby does not stream; see {logfile}"
            )
        # A standby stopped while the primary recycled the WAL it needs cannot catch up (no
        # replication slot on purpose: a forgotten slot keeps every WAL file on the primary).
        log("the PostgreSQL standby does not stream (WAL gone?): cloning it again")
        stop_postgres(self.layout, "replica")
        self.clone()
        pg_ctl_start(self.datadir, self.port, self.pgroot, logfile, "-c hot_standby=on")
        wait_until(self.streaming, "the PostgreSQL standby's WAL stream", catch_up_seconds)

    def stop(self) -> bool:
        return stop_postgres(self.layout, "replica")


def postgres_replicas(settings: Settings, layout: Layout) -> list[PostgresReplica]:
    """The standby when TOPOLOGY=scaled, or when this state folder's standby runs (so `down`
    and `status` without TOPOLOGY still see one that `TOPOLOGY=scaled up` started)."""
    replica = PostgresReplica(settings, layout)
    return [replica] if topology() == "scaled" or replica.our_pid() is not None else []


def up_postgres_replica(settings: Settings, layout: Layout) -> list[str]:
    """Start the standby unless it runs (or is someone else's); returns the names started."""
    replica = PostgresReplica(settings, layout)
    if not replica.needs_start():
        return []
    replica.install()
    replica.start()
    return [replica.name]


class Redis(Service):
    name = "redis"

    @property
    def host(self) -> str:
        return self.settings.redis_host

    @property
    def port(self) -> int:
        return self.settings.redis_port

    def install(self) -> None:
        ensure_system_packages(need_pg=False, need_redis=True)

    def answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.3) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        workdir = self.layout.state / "redis"
        workdir.mkdir(parents=True, exist_ok=True)
        spawn(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                # Capped timelines (800 entries) stay compact listpacks; the ElastiCache parameter
                # group carries the same value.
                "--zset-max-listpack-entries",
                "1024",
                "--maxmemory-policy",
                "noeviction",
            ],
            self.layout,
            self.name,
        )
        wait_until(self.answers, "Redis")


CLUSTER_NODE_PREFIX = "redis-cluster-"


class RedisClusterNode(Redis):
    """One redis-server in cluster mode: its redis.conf, nodes.conf and data in
    `.state/redis-cluster/<port>/`, its PID file `redis-cluster-<port>.pid`."""

    host = "127.0.0.1"

    def __init__(self, settings: Settings, layout: Layout, port: int, bus_offset: int) -> None:
        super().__init__(settings, layout)
        self._port = port
        self.bus_port = port + bus_offset
        self.name = f"{CLUSTER_NODE_PREFIX}{port}"

    @property
    def port(self) -> int:  # type: ignore[override]
        return self._port

    @property
    def workdir(self) -> Path:
        return self.layout.state / "redis-cluster" / str(self.port)

    def config(self) -> Path:
        """Written on every start (the ports may have changed); nodes.conf is Redis's own."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f'dir "{self.workdir}"',
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    f"cluster-port {self.bus_port}",
                    f"cluster-node-timeout {cluster_node_timeout_ms()}",
                    # As the single Redis: no persistence, compact capped timelines, no eviction.
                    'save ""',
                    "appendonly no",
                    "zset-max-listpack-entries 1024",
                    "maxmemory-policy noeviction",
                    "",
                ]
            )
        )
        return conf

    def start(self) -> None:
        conf = self.config()
        spawn([shutil.which("redis-server") or "redis-server", str(conf)], self.layout, self.name)
        wait_until(self.answers, f"Redis Cluster node {self.port}")


def redis_cli(port: int, *args: str, timeout: float = 60) -> str:
    out = subprocess.run(
        [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.stdout


def cluster_info(port: int) -> dict[str, str]:
    """CLUSTER INFO of one node as a dict ({} when it does not answer)."""
    try:
        text = redis_cli(port, "CLUSTER", "INFO", timeout=5)
    except (subprocess.SubprocessError, OSError):
        return {}
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def cluster_replicas(port: int) -> dict[str, int] | None:
    """CLUSTER NODES seen from one node: each master that owns slots -> how many replicas it has
    (None when the node does not answer or some node is failing or a master owns no slot)."""
    try:
        text = redis_cli(port, "CLUSTER", "NODES", timeout=5)
    except (subprocess.SubprocessError, OSError):
        return None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if any("fail" in row[2] or "handshake" in row[2] or row[7] != "connected" for row in rows):
        return None
    masters = {row[0]: 0 for row in rows if "master" in row[2].split(",")}
    for row in rows:
        if "slave" in row[2].split(","):
            if row[3] not in masters:
                return None
            masters[row[3]] += 1
    if any(len(row) < 9 for row in rows if row[0] in masters):  # a master without slots
        return None
    return masters


def replica_in_sync(port: int) -> bool:
    """A master, or a replica whose link to its master is up: a replica that has not finished
    its first sync holds no data and would not take over from a master that dies."""
    try:
        text = redis_cli(port, "INFO", "replication", timeout=5)
    except (subprocess.SubprocessError, OSError):
        return False
    info = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return info.get("role") == "master" or info.get("master_link_status") == "up"


def cluster_nodes(
    settings: Settings, layout: Layout, configured: bool | None = None
) -> list[RedisClusterNode]:
    """The cluster's nodes: those REDIS_CLUSTER_PORTS names when TOPOLOGY=scaled (or
    `configured`), then those a live PID file of this state folder names (so `down` and
    `status` without TOPOLOGY still see a cluster that `TOPOLOGY=scaled up` started)."""
    offset = cluster_bus_offset()
    ports: list[int] = []
    if configured if configured is not None else topology() == "scaled":
        ports = cluster_ports_from_env()
    for pidfile in sorted(layout.run.glob(f"{CLUSTER_NODE_PREFIX}*.pid")):
        port = pidfile.stem.removeprefix(CLUSTER_NODE_PREFIX)
        if port.isdigit() and int(port) not in ports and read_pid(pidfile) is not None:
            ports.append(int(port))
    return [RedisClusterNode(settings, layout, port, offset) for port in ports]


def ensure_redis_cluster(nodes: list[RedisClusterNode], timeout: float = 60) -> bool:
    """Once every node runs: create the cluster when no node has a slot yet (the first start:
    `redis-cli --cluster create ... --cluster-replicas 1`), else wait until the restarted nodes,
    which keep their nodes.conf, agree again. Returns whether it created the cluster."""
    ports = [n.port for n in nodes]
    infos = {port: cluster_info(port) for port in ports}
    created = False
    if all(int(i.get("cluster_slots_assigned", 0)) == 0 for i in infos.values()):
        if any(int(i.get("cluster_known_nodes", 1)) > 1 for i in infos.values()):
            raise SystemExit(
                "[devstack] the Redis Cluster nodes know each other but own no slots: "
                "remove .state/redis-cluster (or `make clean`) and run again"
            )
        log(f"creating a Redis Cluster on ports {ports[0]}-{ports[-1]}")
        redis_cli(
            ports[0],
            "--cluster",
            "create",
            *(f"127.0.0.1:{p}" for p in ports),
            "--cluster-replicas",
            str(REDIS_CLUSTER_REPLICAS),
            "--cluster-yes",
        )
        created = True

    def every_node_ok() -> bool:
        # cluster_state:ok comes as soon as the slots are covered; the replicas' roles reach
        # every node by gossip a moment later.
        wanted = [REDIS_CLUSTER_REPLICAS] * (len(ports) // (REDIS_CLUSTER_REPLICAS + 1))
        for port in ports:
            info = cluster_info(port)
            if info.get("cluster_state") != "ok" or info.get("cluster_known_nodes") != str(
                len(ports)
            ):
                return False
            replicas = cluster_replicas(port)
            if replicas is None or sorted(replicas.values()) != wanted:
                return False
            if not replica_in_sync(port):
                return False
        return True

    wait_until(
        every_node_ok,
        "the Redis Cluster (cluster_state:ok, every master's replica seen by every node and"
        " in sync)",
        timeout,
    )
    return created


def up_redis_cluster(settings: Settings, layout: Layout) -> list[str]:
    """Start the cluster nodes that do not run, then create or re-join the cluster; returns the
    names it started."""
    nodes = cluster_nodes(settings, layout, configured=True)
    started = []
    for node in nodes:
        if node.needs_start():
            node.install()
            node.start()
            started.append(node.name)
    ensure_redis_cluster(nodes)
    return started


def stop_redis_cluster(layout: Layout) -> list[str]:
    """Stop every cluster node this state folder's PID files name (needs no settings)."""
    stopped = []
    for pidfile in sorted(layout.run.glob(f"{CLUSTER_NODE_PREFIX}*.pid")):
        pid = read_pid(pidfile)
        if pid is not None:
            stop_pid(pid, pidfile.stem)
            stopped.append(pidfile.stem)
        pidfile.unlink(missing_ok=True)
    return stopped


class FerretDB(Service):
    name = "ferretdb"

    def __init__(self, settings: Settings, layout: Layout) -> None:
        super().__init__(settings, layout)
        url = urlparse(settings.mongodb_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 27017

    def install(self) -> None:
        self.binary = ensure_ferretdb()

    def start(self) -> None:
        s = self.settings
        pg = (
            f"postgres://{s.postgres_user}:{s.postgres_password}@{s.postgres_host}:"
            f"{s.postgres_port}/ferretdb"
        )
        workdir = self.layout.state / "ferretdb"
        workdir.mkdir(parents=True, exist_ok=True)
        spawn(
            [
                str(self.binary),
                f"--listen-addr=127.0.0.1:{self.port}",
                "--handler=postgresql",
                f"--postgresql-url={pg}",
                "--telemetry=disable",
                f"--state-dir={workdir}",
                # Its debug/metrics listener defaults to :8088; keep it next to the main port.
                f"--debug-addr=127.0.0.1:{self.port + 1}",
                "--log-level=warn",
            ],
            self.layout,
            self.name,
        )
        wait_until(self.answers, "FerretDB")


class Emulator(Service):
    name = "emulator"

    def __init__(self, settings: Settings, layout: Layout) -> None:
        super().__init__(settings, layout)
        url = urlparse(settings.aws_endpoint_url or "")
        self.host = url.hostname or ""
        self.port = url.port or 4566

    @property
    def enabled(self) -> bool:
        return bool(self.settings.aws_endpoint_url)

    def answers(self) -> bool:
        try:
            with urlopen(f"http://{self.host}:{self.port}/_localstack/health", timeout=0.5) as r:
                return r.status == 200
        except OSError:
            return False

    def install(self) -> None:
        self.exe = ensure_ministack()

    def start(self) -> None:
        workdir = self.layout.state / "emulator"
        workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "STATE_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
        }
        spawn([str(self.exe)], self.layout, self.name, env=env, cwd=workdir)
        wait_until(self.answers, "AWS emulator (ministack)")


class DevServer(Service):
    """The three API apps on one uvicorn server, with Swagger UI and ReDoc."""

    name = "api"
    host = "127.0.0.1"

    def __init__(self, settings: Settings, layout: Layout) -> None:
        super().__init__(settings, layout)
        self.port = int(os.environ.get("FEED_API_PORT", "8000"))

    def answers(self) -> bool:
        try:
            with urlopen(f"http://{self.host}:{self.port}/openapi.json", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def start(self, env: dict[str, str] | None = None) -> None:
        spawn(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                str(ROOT / "infra" / "devserver.py"),
                "--port",
                str(self.port),
            ],
            self.layout,
            self.name,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        wait_until(self.answers, "the dev API server", timeout=60)


class FanoutWorker(Service):
    """Consumes the emulator's fan-out queue into the fan-out handler (no port)."""

    name = "fanout-worker"
    host = "127.0.0.1"
    port = 0

    def where(self) -> str:
        return f"queue {self.settings.fanout_queue_name}"

    def answers(self) -> bool:
        return False

    def start(self, env: dict[str, str] | None = None) -> None:
        spawn(
            [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "infra" / "fanout_worker.py")],
            self.layout,
            self.name,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )


class MonitoringDaemon(Service):
    """A monitoring server from Debian's packages: binary, flags, and a URL that answers 200
    once it is ready."""

    binary = ""
    port_env = ""
    ready_path = "/metrics"
    listen_flag = "--web.listen-address"
    host = "127.0.0.1"

    def __init__(self, settings: Settings, layout: Layout) -> None:
        super().__init__(settings, layout)
        self.port = monitoring_port(self.port_env)

    @property
    def workdir(self) -> Path:
        return self.layout.state / self.name

    def answers(self) -> bool:
        try:
            with urlopen(f"http://{self.host}:{self.port}{self.ready_path}", timeout=0.5) as r:
                return r.status == 200
        except OSError:
            return False

    def install(self) -> None:
        ensure_monitoring_packages()

    def arguments(self) -> list[str]:
        return []

    def environment(self) -> dict[str, str]:
        return {}

    def start(self, env: dict[str, str] | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        exe = shutil.which(self.binary) or self.binary
        spawn(
            [exe, f"{self.listen_flag}=127.0.0.1:{self.port}", *self.arguments()],
            self.layout,
            self.name,
            env={**os.environ, **self.environment()},
            cwd=self.workdir,
        )
        wait_until(self.answers, self.name)


class Pushgateway(MonitoringDaemon):
    name = "pushgateway"
    binary = "prometheus-pushgateway"
    port_env = "PUSHGATEWAY_PORT"
    ready_path = "/-/ready"

    def arguments(self) -> list[str]:
        # Kept across restarts: the last success of a daily job must survive a `make down`.
        return [f"--persistence.file={self.workdir / 'pushgateway.data'}"]


class RedisExporter(MonitoringDaemon):
    name = "redis-exporter"
    binary = "prometheus-redis-exporter"
    port_env = "REDIS_EXPORTER_PORT"

    # Go's flag package: one dash.
    listen_flag = "-web.listen-address"

    def arguments(self) -> list[str]:
        return [f"-redis.addr=redis://{self.settings.redis_host}:{self.settings.redis_port}"]


class PostgresExporter(MonitoringDaemon):
    name = "postgres-exporter"
    binary = "prometheus-postgres-exporter"
    port_env = "POSTGRES_EXPORTER_PORT"

    def environment(self) -> dict[str, str]:
        dsn = self.settings.postgres_dsn
        return {"DATA_SOURCE_NAME": f"{dsn}?sslmode=disable"}


class Prometheus(MonitoringDaemon):
    name = "prometheus"
    binary = "prometheus"
    port_env = "PROMETHEUS_PORT"
    ready_path = "/-/ready"

    def config(self) -> Path:
        """Render infra/monitoring/prometheus.yml.tmpl for this machine's ports."""
        ferretdb = FerretDB(self.settings, self.layout)
        values = {
            "DOLLAR": "$",
            "scrape_interval": os.environ.get("PROMETHEUS_SCRAPE_INTERVAL") or "15s",
            "rules_file": str(MONITORING_DIR / "alerts.yml"),
            "prometheus_port": self.port,
            "api_port": DevServer(self.settings, self.layout).port,
            "worker_metrics_port": monitoring_port("FANOUT_WORKER_METRICS_PORT"),
            "pushgateway_port": monitoring_port("PUSHGATEWAY_PORT"),
            "redis_exporter_port": monitoring_port("REDIS_EXPORTER_PORT"),
            "postgres_exporter_port": monitoring_port("POSTGRES_EXPORTER_PORT"),
            "ferretdb_debug_port": ferretdb.port + 1,
        }
        template = string.Template((MONITORING_DIR / "prometheus.yml.tmpl").read_text())
        out = self.workdir / "prometheus.yml"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(template.substitute(values))
        return out

    def arguments(self) -> list[str]:
        return [
            f"--config.file={self.config()}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            "--storage.tsdb.retention.time=7d",
            # POST /-/reload after editing the rules; tests read the API.
            "--web.enable-lifecycle",
        ]


def monitoring(settings: Settings, layout: Layout) -> list[Service]:
    return [
        Pushgateway(settings, layout),
        RedisExporter(settings, layout),
        PostgresExporter(settings, layout),
        Prometheus(settings, layout),
    ]


def services(settings: Settings, layout: Layout, apps: bool = False) -> list[Service]:
    """The stores and the emulator; with `apps`, also the dev API server, the fan-out worker
    and the monitoring."""
    all_: list[Service] = [
        Postgres(settings, layout),
        Redis(settings, layout),
        FerretDB(settings, layout),
    ]
    emulator = Emulator(settings, layout)
    if emulator.enabled:
        all_.append(emulator)
    if apps:
        all_.append(DevServer(settings, layout))
        if emulator.enabled:
            all_.append(FanoutWorker(settings, layout))
        all_.extend(monitoring(settings, layout))
    return all_


# ---------------------------------------------------------------------------------------------
# Commands


def init_schema(python: Path, settings_env: dict[str, str] | None = None) -> None:
    env = {**os.environ, **(settings_env or {})}
    run([str(python), str(ROOT / "infra" / "init_db.py")], env=env)


def cmd_up(args: argparse.Namespace) -> list[str]:
    """Start every service that is not running; returns the names it started."""
    t0 = time.monotonic()
    settings = load_settings()
    layout = layout_from_env()
    layout.state.mkdir(parents=True, exist_ok=True)
    python = ensure_project_venv()
    started = []
    stores = services(settings, layout)
    for svc in stores:
        if svc.needs_start():
            svc.install()
            svc.start()
            started.append(svc.name)
    if topology() == "scaled":
        started += up_postgres_replica(settings, layout)
        started += up_redis_cluster(settings, layout)
    init_schema(python)
    if args.apps:
        app_env: dict[str, str] = {}
        if settings.aws_endpoint_url and not settings.fanout_queue_url:
            # The dev API sends fan-out jobs to the emulator's queue, as the posts function
            # does in AWS; the worker consumes them.
            out = subprocess.run(
                [str(python), str(ROOT / "infra" / "local_queues.py"), "--url-only"],
                check=True,
                capture_output=True,
                text=True,
            )
            app_env["FANOUT_QUEUE_URL"] = out.stdout.strip()
        if settings.aws_endpoint_url:
            # The dev API's upload targets point at this emulator bucket (MEDIA_BUCKET).
            out = subprocess.run(
                [str(python), str(ROOT / "infra" / "local_media.py")],
                check=True,
                capture_output=True,
                text=True,
            )
            app_env["MEDIA_BUCKET"] = out.stdout.strip()
        # The scheduled functions deployed to the emulator (and `make invoke`) push their runs
        # to the local Pushgateway.
        os.environ.setdefault(
            "PUSHGATEWAY_URL", f"http://127.0.0.1:{monitoring_port('PUSHGATEWAY_PORT')}"
        )
        for svc in services(settings, layout, apps=True)[len(stores) :]:
            if svc.needs_start():
                svc.install()
                svc.start(app_env)
                started.append(svc.name)
    if args.deploy and settings.aws_endpoint_url:
        deploy_stack(python)
    if not args.quiet:
        print_status(settings, layout)
        log(
            f"up in {time.monotonic() - t0:.1f} s"
            + (f"; started {', '.join(started)}" if started else "; everything was running")
        )
    return started


def deploy_stack(python: Path, stage: str = "local") -> None:
    """Build (when sources changed) and deploy template.yaml to the emulator (infra/deploy.py)."""
    run([str(python), str(ROOT / "infra" / "deploy.py"), "deploy", "--stage", stage])


def deployed_stack(layout: Layout, stage: str = "local") -> dict | None:
    try:
        return json.loads((layout.state / f"stack-{stage}.json").read_text())
    except (OSError, ValueError):
        return None


def cmd_down(args: argparse.Namespace, only: list[str] | None = None) -> None:
    settings = load_settings()
    layout = layout_from_env()
    # Reverse order: FerretDB stores in PostgreSQL, so it stops first. The Redis Cluster's
    # nodes and the PostgreSQL standby (any this state folder's PID files name, whatever
    # TOPOLOGY says now) before the stores.
    everything = list(reversed(services(settings, layout, apps=True)))
    stores = len(services(settings, layout))
    cluster = cluster_nodes(settings, layout, configured=False)
    replica = [PostgresReplica(settings, layout)]  # stops only if its PID file says it runs
    for svc in [*everything[:-stores], *cluster, *replica, *everything[-stores:]]:
        if only is not None and svc.name not in only:
            continue
        if svc.stop():
            log(f"stopped {svc.name}")


def print_status(settings: Settings, layout: Layout) -> bool:
    all_ok = True
    print(f"{'service':<19} {'state':<9} {'pid':>7}  address")
    cluster = cluster_nodes(settings, layout)
    replicas = postgres_replicas(settings, layout)
    for svc in [*services(settings, layout, apps=True), *replicas, *cluster]:
        st = svc.status()
        all_ok &= st.state != "stopped"
        print(f"{st.name:<19} {st.state:<9} {st.pid or '-':>7}  {st.where}")
    print(f"\nPOSTGRES  {settings.postgres_dsn}")
    for replica in replicas:
        print(
            f"REPLICA   {replica.host}:{replica.port} (standby, WAL receiver"
            f" {replica.receiver_status()}; the app reads from it with"
            f" POSTGRES_REPLICA_HOST={replica.host} POSTGRES_REPLICA_PORT={replica.port})"
        )
    print(f"REDIS     redis://{settings.redis_host}:{settings.redis_port}/{settings.redis_db}")
    if cluster:
        first = cluster[0].port
        info = cluster_info(first)
        print(
            f"CLUSTER   redis://127.0.0.1:{first} ({len(cluster)} nodes,"
            f" cluster_state:{info.get('cluster_state', 'down')}; the app uses it with"
            f" REDIS_CLUSTER=true REDIS_PORT={first})"
        )
    print(f"MONGODB   {settings.mongodb_url}")
    print(f"AWS       {settings.aws_endpoint_url or 'real AWS (AWS_ENDPOINT_URL empty)'}")
    api_port = os.environ.get("FEED_API_PORT", "8000")
    print(f"API       http://127.0.0.1:{api_port}  (dev server; Swagger UI /docs, ReDoc /redoc)")
    print(
        f"METRICS   http://127.0.0.1:{monitoring_port('PROMETHEUS_PORT')}  (Prometheus: targets"
        " /targets, alerts /alerts; dashboard JSON infra/monitoring/grafana/)"
    )
    print(f"PUSH      http://127.0.0.1:{monitoring_port('PUSHGATEWAY_PORT')}  (Pushgateway)")
    stack = deployed_stack(layout)
    emulator_up = Emulator(settings, layout).status().state != "stopped"
    if stack and emulator_up:
        print(f"API       {stack['api_url']}  (stack {stack['stack_name']} in the emulator)")
        print(
            "          token: .venv/bin/python infra/mint_token.py --sub alice"
            f" --issuer {stack['issuer']}"
        )
    print(f"state     {layout.state}")
    return all_ok


def cmd_status(args: argparse.Namespace) -> int:
    ok = print_status(load_settings(), layout_from_env())
    return 0 if ok else 3


# TOPOLOGY=scaled `test`: after the whole suite, the tests that use the suite's Redis client
# (marked in tests/conftest.py) run once more, with that client a cluster client.
CLUSTER_PASS_MARKER = "uses_redis"
PYTEST_NO_TESTS = 5


def cluster_pass_env() -> dict[str, str]:
    """The test settings of the cluster pass: the first node of REDIS_CLUSTER_PORTS as the
    startup node, cluster mode, database 0 (a cluster has no other)."""
    return {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(cluster_ports_from_env()[0]),
        "REDIS_CLUSTER": "true",
        "TEST_REDIS_DB": "0",
    }


def cmd_test(args: argparse.Namespace) -> int:
    """Start what the tests need, run pytest, stop only what this run started. TOPOLOGY=scaled:
    then the Redis tests once more, against the cluster."""
    started = cmd_up(argparse.Namespace(quiet=True, apps=False, deploy=False))
    if started:
        log(f"started for the tests: {', '.join(started)}")
    # promtool checks the alert rules; the monitoring test runs Prometheus and the exporters.
    ensure_monitoring_packages()
    python = ROOT / ".venv" / "bin" / "python"
    test_env = {"POSTGRES_DB": "feed_test", "MONGODB_DB": "feed_test", "REDIS_DB": "15"}
    try:
        init_schema(python, test_env)
        # The tests see no TOPOLOGY: those that start stacks of their own (tests/stack) choose
        # theirs, and would otherwise start clusters on the ports of the one `up` started.
        env = {k: v for k, v in os.environ.items() if k != "TOPOLOGY"}
        rc = subprocess.run(
            [str(python), "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env
        ).returncode
        if topology() == "scaled":
            log("the Redis tests again, against the Redis Cluster")
            cluster_rc = subprocess.run(
                [str(python), "-m", "pytest", *args.pytest_args, "-m", CLUSTER_PASS_MARKER],
                cwd=ROOT,
                env={**env, **cluster_pass_env()},
            ).returncode
            # 5: the arguments selected no Redis test (a subset run), not a failure.
            rc = rc or (0 if cluster_rc == PYTEST_NO_TESTS else cluster_rc)
    finally:
        if started:
            cmd_down(args, only=started)
    return rc


def stop_by_pid_files(layout: Layout) -> None:
    """`down` without the settings (so without .venv): stop what this state folder's PID files
    name, in `cmd_down`'s order, the PostgreSQL cluster last."""
    order = (
        Prometheus,
        PostgresExporter,
        RedisExporter,
        Pushgateway,
        FanoutWorker,
        DevServer,
        Emulator,
        FerretDB,
        Redis,
    )
    for name in (svc.name for svc in order):
        pid = read_pid(layout.pidfile(name))
        if pid is not None:
            stop_pid(pid, name)
            log(f"stopped {name}")
        layout.pidfile(name).unlink(missing_ok=True)
    for name in stop_redis_cluster(layout):
        log(f"stopped {name}")
    if stop_postgres(layout, "replica"):
        log(f"stopped {REPLICA_NAME}")
    if stop_postgres(layout):
        log("stopped postgres")


def remove_state(layout: Layout) -> None:
    pgroot = postgres_root(layout)
    if pgroot.parent != layout.state:
        shutil.rmtree(pgroot, ignore_errors=True)
    shutil.rmtree(layout.state, ignore_errors=True)
    log(f"removed {layout.state}")


def cmd_clean(args: argparse.Namespace) -> None:
    """Stop everything, then delete all local state (databases, logs, keys)."""
    cmd_down(args)
    remove_state(layout_from_env())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="install what is missing and start every service")
    up.add_argument("--quiet", action="store_true")
    up.add_argument(
        "--no-apps",
        dest="apps",
        action="store_false",
        help="start only the stores and the emulator, not the dev API and worker",
    )
    up.add_argument(
        "--no-deploy",
        dest="deploy",
        action="store_false",
        help="do not build and deploy template.yaml to the emulator",
    )
    sub.add_parser("down", help="stop every service that `up` started")
    sub.add_parser("status", help="show what runs where")
    sub.add_parser("clean", help="stop everything and delete all local state")
    test = sub.add_parser("test", help="run the test suite with the services it needs")
    test.add_argument("pytest_args", nargs="*", help="passed to pytest as they are")
    # parse_known_args: pytest's own options (-x, -k EXPR) pass through to it untouched.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "test":
        args.pytest_args = [*extra, *args.pytest_args]
    if not in_project_venv():
        if args.command in ("down", "clean") and not VENV_PYTHON.exists():
            # `up` makes .venv before it starts anything; without one, stopping by PID file and
            # deleting files is all there can be to do, and that needs no settings.
            layout = layout_from_env()
            stop_by_pid_files(layout)
            if args.command == "clean":
                remove_state(layout)
            return 0
        bootstrap(sys.argv[1:] if argv is None else argv)
    os.environ.pop(BOOTSTRAPPED, None)  # the services and tests started from here run their own
    settings = load_settings()
    if settings.aws_endpoint_url:
        # The emulator accepts any credentials, but AWS clients refuse to sign without some.
        for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
            os.environ.setdefault(name, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", settings.aws_region)
    if args.command == "up":
        cmd_up(args)
        return 0
    if args.command == "down":
        cmd_down(args)
        return 0
    if args.command == "status":
        return cmd_status(args)
    if args.command == "clean":
        cmd_clean(args)
        return 0
    return cmd_test(args)


if __name__ == "__main__":
    sys.exit(main())
