"""A real, local, multi-node Elasticsearch cluster without Docker (``sas es cluster start|stop|status``).

The topology of compose.yaml's ``cluster`` profile (es01..es03, every node master-eligible and holding data,
``discovery.seed_hosts`` naming the others, ``cluster.initial_master_nodes`` naming all) as processes of this
machine: the same pinned distribution as the single node (``local_es``: fetched once, cached, unpacked once
here and shared by the nodes, each with a configuration folder of its own through ``ES_PATH_CONF``), on
loopback, with small heaps, as the same unprivileged account. Each node has its own config, data, logs, tmp
and pid file under ``es_cluster_home/<name>``; the single node's ports, home and pid file are never used.

Security stays off, like the single node: the nodes talk over loopback only (compose turns transport TLS
on because its nodes talk over a network).

``LocalCluster.kill`` / ``start_node`` let the resilience suite (tests/cluster) lose and bring back one node;
every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from sas_core import local_es
from sas_core.errors import ConfigurationError
from sas_core.local_es import ES_VERSION
from sas_core.settings import Settings


@dataclass(frozen=True)
class ClusterNode:
    """One node of the local cluster: its name, ports and folders."""

    name: str
    http_port: int
    transport_port: int
    home: Path
    #: Names of the other nodes (its ``discovery.seed_hosts``, as in compose.yaml).
    seeds: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def config(self) -> Path:
        return self.home / "config"

    @property
    def pid_file(self) -> Path:
        return self.home / "elasticsearch.pid"


@dataclass(frozen=True)
class NodeState:
    """What ``sas es cluster status`` reports for one node."""

    name: str
    url: str
    pid: int | None
    reachable: bool
    master: bool


@dataclass(frozen=True)
class ClusterStatus:
    """Every node's state, the elected master and the cluster health (``None`` when no node answers)."""

    nodes: list[NodeState]
    master: str | None
    health: dict | None

    @property
    def running(self) -> int:
        return sum(1 for node in self.nodes if node.pid is not None)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie — killed, not yet reaped — is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


class LocalCluster:
    """The cluster of ``settings.es_cluster_*``: start, stop, status, and one node killed or restarted."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.es_cluster_home
        self.install = self.home / f"elasticsearch-{ES_VERSION}"
        self.snapshots = self.home / "snapshots"
        names = [f"es{number:02d}" for number in range(1, settings.es_cluster_nodes + 1)]
        self.nodes = [
            ClusterNode(name=name, http_port=settings.es_cluster_http_port + i,
                        transport_port=settings.es_cluster_transport_port + i, home=self.home / name,
                        seeds=tuple(other for other in names if other != name))
            for i, name in enumerate(names)
        ]
        ports = {n.http_port for n in self.nodes} | {n.transport_port for n in self.nodes}
        if ports & {settings.es_port, settings.es_port + 100}:
            raise ConfigurationError("the local cluster's ports overlap the single node's: change SAS_ES_CLUSTER_*")

    # -- topology ---------------------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """Every node's HTTP address (what a failing-over client is given: ``SAS_ES_URLS``)."""
        return [node.url for node in self.nodes]

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def topology(self) -> dict:
        """The cluster as compose.yaml describes its own: names, roles, seeds, initial masters, version."""
        return {
            "cluster_name": self.settings.es_cluster_name,
            "version": ES_VERSION,
            "initial_master_nodes": [node.name for node in self.nodes],
            # No node.roles: every node has the default roles (master-eligible, data, ingest…), as in compose.
            "nodes": [{"name": node.name, "seed_hosts": list(node.seeds), "roles": None, "master_eligible": True,
                       "data": True} for node in self.nodes],
        }

    def _yml(self, node: ClusterNode) -> str:
        seeds = ", ".join(f'"127.0.0.1:{self.node(name).transport_port}"' for name in node.seeds)
        masters = ", ".join(n.name for n in self.nodes)
        return "\n".join([
            "# Written by `sas es cluster start`: a local cluster for development and tests only.",
            f"cluster.name: {self.settings.es_cluster_name}",
            f"node.name: {node.name}",
            "network.host: 127.0.0.1",
            f"http.port: {node.http_port}",
            f"transport.port: {node.transport_port}",
            f"discovery.seed_hosts: [{seeds}]",
            f"cluster.initial_master_nodes: [{masters}]",
            f"path.data: {node.home / 'data'}",
            f"path.logs: {node.home / 'logs'}",
            f"path.repo: [\"{self.snapshots}\"]",
            "cluster.routing.allocation.disk.threshold_enabled: false",
            "xpack.security.enabled: false",
            "action.destructive_requires_name: true",
            "",
        ])

    def jvm_options(self) -> dict[str, str | None]:
        """Each node's files of ``config/jvm.options.d`` (``None``: the file must not be there)."""
        heap = self.settings.es_cluster_heap
        return {"sas-heap.options": f"-Xms{heap}\n-Xmx{heap}\n",
                # The client compiler only: see ``es_cluster_jit_client_only``.
                "sas-jit.options": "-XX:TieredStopAtLevel=1\n" if self.settings.es_cluster_jit_client_only else None}

    def _prepare(self) -> None:
        user = local_es.ensure_user(self.settings)
        self.home.mkdir(parents=True, exist_ok=True)
        self.snapshots.mkdir(exist_ok=True)
        local_es.unpack(self.settings, install=self.install)
        for node in self.nodes:
            for sub in ("data", "logs", "tmp"):
                (node.home / sub).mkdir(parents=True, exist_ok=True)
            if not node.config.is_dir():
                shutil.copytree(self.install / "config", node.config)
            (node.config / "elasticsearch.yml").write_text(self._yml(node))
            options = node.config / "jvm.options.d"
            options.mkdir(exist_ok=True)
            for name, text in self.jvm_options().items():
                if text is None:
                    (options / name).unlink(missing_ok=True)
                else:
                    (options / name).write_text(text)
        local_es.chown_tree(self.home, user)

    # -- processes --------------------------------------------------------------------------------------------

    def pid(self, name: str) -> int | None:
        """Pid of the node ``name`` when it runs: its pid file, else the server process whose environment
        names its config folder (the nodes share one install, so the command line cannot tell them apart)."""
        node = self.node(name)
        try:
            pid = int(node.pid_file.read_text().strip())
            if self._is_node(pid, node):
                return pid
        except (OSError, ValueError):
            pass
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and self._is_node(int(proc.name), node):
                return int(proc.name)
        return None

    def _is_node(self, pid: int, node: ClusterNode) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if f"-Des.path.home={self.install}".encode() not in cmdline or b"org.elasticsearch.server" not in cmdline:
                return False
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        return f"ES_PATH_CONF={node.config}".encode() in environ and _alive(pid)

    def _launch(self, node: ClusterNode) -> subprocess.Popen:
        user = local_es.ensure_user(self.settings)
        probe = _get(f"{node.url}/_cluster/health", timeout=1.0)
        if probe is not None:
            raise ConfigurationError(f"port {node.http_port} already answers and is not {node.name} of "
                                     f"{self.home}: set SAS_ES_CLUSTER_HTTP_PORT")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": str(local_es.find_java_home(self.settings)),
            "ES_PATH_CONF": str(node.config),
            "ES_TMPDIR": str(node.home / "tmp"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
        }
        node.pid_file.unlink(missing_ok=True)
        command = [str(self.install / "bin" / "elasticsearch"), "-d", "-p", str(node.pid_file)]
        if user is not None:
            command = ["runuser", "-u", user.pw_name, "--", *command]
        console = open(node.home / "logs" / "console.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            # A session of its own: the node outlives the shell or test that started it, until stopped.
            return subprocess.Popen(command, env=env, stdout=console, stderr=subprocess.STDOUT, cwd=node.home,
                                    start_new_session=True)
        finally:
            console.close()

    def _await_launchers(self, launched: dict[str, subprocess.Popen], *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for name, process in launched.items():
            try:
                code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = -1
            if code != 0:
                raise ConfigurationError(f"{name} failed to start (exit {code}); see "
                                         f"{self.node(name).home / 'logs'}")

    def start(self, *, timeout_s: float = 180.0) -> ClusterStatus:
        """Start every node that is not running (all at once: they elect a master together) and wait until the
        cluster has all of them and is green. Nodes already running are left alone (a no-op when all are)."""
        self._prepare()
        missing = [node for node in self.nodes if self.pid(node.name) is None]
        launched = {node.name: self._launch(node) for node in missing}
        self._await_launchers(launched, timeout_s=timeout_s)
        self.wait_for_health(status="green", timeout_s=timeout_s)
        return self.status()

    def start_node(self, name: str, *, timeout_s: float = 120.0) -> float:
        """Start one stopped (or killed) node and wait until the cluster has every node again; the seconds
        it took. A node already running is left alone."""
        started = time.monotonic()
        if self.pid(name) is None:
            self._await_launchers({name: self._launch(self.node(name))}, timeout_s=timeout_s)
        self.wait_for_health(status="yellow", timeout_s=max(1.0, timeout_s - (time.monotonic() - started)))
        return time.monotonic() - started

    def kill(self, name: str, sig: int = signal.SIGKILL, *, timeout_s: float = 60.0) -> int:
        """Send ``sig`` to node ``name`` (``SIGKILL``: the node loses power; ``SIGTERM``: a clean stop) and wait
        until its process is gone; the pid it had."""
        pid = self.pid(name)
        if pid is None:
            raise ConfigurationError(f"{name} is not running")
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while _alive(pid):
            if time.monotonic() > deadline:
                raise ConfigurationError(f"{name} (pid {pid}) still runs {timeout_s:.0f}s after signal {sig}")
            time.sleep(0.1)
        return pid

    def stop(self, *, timeout_s: float = 60.0) -> list[str]:
        """Stop every running node (a clean stop, then ``SIGKILL`` after ``timeout_s``); the names stopped
        (empty when none ran)."""
        running = {node.name: pid for node in self.nodes if (pid := self.pid(node.name)) is not None}
        for pid in running.values():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while any(_alive(pid) for pid in running.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in running.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        return list(running)

    def remove(self) -> None:
        """Stop the cluster and delete its folders (install, data, logs): nothing of it is left."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    # -- state ------------------------------------------------------------------------------------------------

    def master(self) -> str | None:
        """Name of the elected master, asked of the first node that answers."""
        for node in self.nodes:
            answer = _get(f"{node.url}/_cat/master", params={"format": "json"}, timeout=2.0)
            if isinstance(answer, list) and answer:
                return answer[0].get("node")
        return None

    def health(self) -> dict | None:
        """Cluster health, asked of the first node that answers."""
        for node in self.nodes:
            answer = _get(f"{node.url}/_cluster/health", timeout=5.0)
            if isinstance(answer, dict):
                return answer
        return None

    def wait_for_health(self, *, status: str = "green", nodes: int | None = None, timeout_s: float = 120.0) -> float:
        """Block until the cluster has ``nodes`` nodes (default all) and at least ``status``; the seconds waited."""
        wanted = nodes if nodes is not None else len(self.nodes)
        started = time.monotonic()
        last: dict | None = None
        while time.monotonic() - started < timeout_s:
            for node in self.nodes:
                answer = _get(f"{node.url}/_cluster/health", timeout=10.0,
                              params={"wait_for_status": status, "wait_for_nodes": str(wanted), "timeout": "5s"})
                if not isinstance(answer, dict):
                    continue
                last = answer
                if not answer.get("timed_out") and answer.get("number_of_nodes") == wanted:
                    return time.monotonic() - started
                break
            time.sleep(0.5)
        raise ConfigurationError(f"the local cluster is not {status} with {wanted} nodes after {timeout_s:.0f}s "
                                 f"(last health {last}); see {self.home}/es0*/logs")

    def status(self) -> ClusterStatus:
        master = self.master()
        states = [NodeState(name=node.name, url=node.url, pid=self.pid(node.name),
                            reachable=_get(f"{node.url}/_cluster/health", timeout=2.0) is not None,
                            master=node.name == master) for node in self.nodes]
        return ClusterStatus(nodes=states, master=master, health=self.health())


def _get(url: str, *, params: dict | None = None, timeout: float) -> dict | list | None:
    """JSON answer of a GET, or ``None`` when the node does not answer 200 (the cluster runs without security).
    A health request that waited in vain answers 408 with the health it saw: that body is returned too."""
    try:
        response = httpx.get(url, params=params, timeout=timeout)
    except httpx.HTTPError:
        return None
    if response.status_code not in (200, 408):
        return None
    try:
        return response.json()
    except ValueError:
        return None
