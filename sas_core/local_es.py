"""A real, local, single-node Elasticsearch without Docker (``sas es start|stop|status``).

The official minimal distribution is the ``integ-test-zip`` that Elastic publishes on Maven Central;
it is fetched with ``mvn dependency:copy`` (the only way out of these machines), cached under
``~/.cache/sas``, unpacked into ``settings.es_home`` and run on loopback as an unprivileged system user,
because Elasticsearch refuses to run as root.

That zip is the server core plus netty only: no analysis-common, no painless, no reindex module, no
ILM. The platform's code only uses what the core offers, so it runs unchanged on the full distribution.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from sas_core.errors import ConfigurationError
from sas_core.settings import Settings

#: The one place where the Elasticsearch version is pinned (newest published integ-test-zip; no 9.x
#: exists there). compose.yaml uses the same version (a unit test checks it), and the Python client
#: pinned in pyproject.toml is of the same major.
ES_VERSION = "8.19.21"
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
#: Oldest Java major this Elasticsearch major runs on (ES 8: 17, ES 9: 21).
ES_MIN_JAVA = 17


@dataclass(frozen=True)
class NodeStatus:
    """What ``sas es status`` reports."""

    url: str
    reachable: bool
    version: str | None = None
    cluster_status: str | None = None
    managed_pid: int | None = None
    log_file: Path | None = None


def _ping(settings: Settings, timeout: float = 2.0) -> dict | None:
    """Cluster health of the configured URL when it answers, else ``None``.

    (The minimal distribution has no ``GET /`` handler: health is the cheapest universal probe.)
    """
    auth = None
    if settings.es_username and settings.es_password:
        auth = (settings.es_username, settings.es_password.get_secret_value())
    headers = {}
    if settings.es_api_key is not None:
        headers["Authorization"] = f"ApiKey {settings.es_api_key.get_secret_value()}"
    try:
        response = httpx.get(
            f"{settings.es_url}/_cluster/health", timeout=timeout, auth=auth, headers=headers,
            verify=str(settings.es_ca_certs) if settings.es_ca_certs else settings.es_verify_certs,
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _node_version(settings: Settings) -> str | None:
    try:
        nodes = httpx.get(f"{settings.es_url}/_nodes/_local", params={"filter_path": "nodes.*.version"},
                          timeout=5, verify=False).json()
        return next(iter(nodes["nodes"].values()))["version"]
    except (httpx.HTTPError, ValueError, KeyError, StopIteration):
        return None


def _paths(settings: Settings) -> dict[str, Path]:
    home = settings.es_home
    return {
        "home": home,
        "install": home / f"elasticsearch-{ES_VERSION}",
        "data": home / "data",
        "logs": home / "logs",
        "repo": home / "snapshots",
        "tmp": home / "tmp",
        "pid": home / "elasticsearch.pid",
    }


def log_file(settings: Settings) -> Path:
    """Main server log of the local node."""
    return _paths(settings)["logs"] / "sas-local.log"


def cached_zip(settings: Settings) -> Path:
    """Fetch the distribution through Maven into the cache (once) and return its path."""
    target_dir = settings.cache_dir / "elasticsearch"
    target = target_dir / f"elasticsearch-{ES_VERSION}.zip"
    if target.is_file() and zipfile.is_zipfile(target):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError("Maven ('mvn') is needed to fetch Elasticsearch from Maven Central")
    target_dir.mkdir(parents=True, exist_ok=True)
    command = [
        mvn, "-q", "-B", "dependency:copy",
        f"-Dartifact={ES_ARTIFACT}",
        f"-DoutputDirectory={target_dir}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=target_dir)
    if result.returncode != 0 or not target.is_file():
        raise ConfigurationError(
            f"could not fetch {ES_ARTIFACT} with Maven: {(result.stdout + result.stderr)[-2000:]}"
        )
    return target


def find_java_home(settings: Settings) -> Path:
    """A JDK this Elasticsearch supports: the configured one, else the newest installed ≥ ES_MIN_JAVA."""
    if settings.es_java_home:
        return settings.es_java_home
    candidates: list[tuple[int, Path]] = []
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        for entry in jvm_root.iterdir():
            java = entry / "bin" / "java"
            if not java.is_file() or entry.is_symlink():
                continue
            major = _java_major(java)
            if major is not None and major >= ES_MIN_JAVA:
                candidates.append((major, entry))
    if not candidates:
        raise ConfigurationError(f"no JDK >= {ES_MIN_JAVA} found under /usr/lib/jvm; set SAS_ES_JAVA_HOME")
    # Prefer the oldest supported LTS-ish JDK ≥ minimum that is well tested with this major:
    # the lowest major that qualifies is the safest choice for ES 8.
    candidates.sort()
    return candidates[0][1]


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stderr + out.stdout
    for token in text.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and token[0].isdigit() and "." in token:
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return None


def ensure_user(settings: Settings) -> pwd.struct_passwd | None:
    """The unprivileged account the node runs as (created when we are root); ``None`` when not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(settings.es_system_user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             "--home-dir", str(settings.es_home), settings.es_system_user],
            check=True, capture_output=True,
        )
        return pwd.getpwnam(settings.es_system_user)


def unpack(settings: Settings, *, install: Path) -> None:
    """The cached distribution unpacked into ``install`` (once; the local cluster's nodes share one)."""
    if (install / "bin" / "elasticsearch").is_file():
        return
    archive = cached_zip(settings)
    staging = install.parent / ".unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(staging)
    extracted = staging / f"elasticsearch-{ES_VERSION}"
    for script in (extracted / "bin").iterdir():
        script.chmod(0o755)
    jdk_bin = extracted / "jdk" / "bin"
    if jdk_bin.is_dir():
        for tool in jdk_bin.iterdir():
            tool.chmod(0o755)
    shutil.rmtree(install, ignore_errors=True)
    extracted.rename(install)
    shutil.rmtree(staging, ignore_errors=True)


def chown_tree(root_dir: Path, user: pwd.struct_passwd | None) -> None:
    """Give ``root_dir`` and everything under it to the node's account (when we are root)."""
    if user is None:
        return
    for root, dirs, files in os.walk(root_dir):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)


def _install(settings: Settings, user: pwd.struct_passwd | None) -> dict[str, Path]:
    paths = _paths(settings)
    for key in ("home", "data", "logs", "repo", "tmp"):
        paths[key].mkdir(parents=True, exist_ok=True)
    unpack(settings, install=paths["install"])
    config_dir = paths["install"] / "config"
    (config_dir / "elasticsearch.yml").write_text(
        "\n".join(
            [
                "# Written by `sas es start`: local single-node for development and tests only.",
                "cluster.name: sas-local",
                "node.name: sas-local-1",
                "discovery.type: single-node",
                "network.host: 127.0.0.1",
                f"http.port: {settings.es_port}",
                f"transport.port: {settings.es_port + 100}",
                f"path.data: {paths['data']}",
                f"path.logs: {paths['logs']}",
                f"path.repo: [\"{paths['repo']}\"]",
                "cluster.routing.allocation.disk.threshold_enabled: false",
                "xpack.security.enabled: false",
                "action.destructive_requires_name: true",
                "",
            ]
        )
    )
    (config_dir / "jvm.options.d").mkdir(exist_ok=True)
    (config_dir / "jvm.options.d" / "sas-heap.options").write_text(
        f"-Xms{settings.es_heap}\n-Xmx{settings.es_heap}\n"
    )
    chown_tree(paths["home"], user)
    return paths


def _read_pid(settings: Settings) -> int | None:
    """Pid of the node this tool runs: from its pid file, else found by its home in ``/proc``."""
    pid_file = _paths(settings)["pid"]
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        pass
    marker = f"-Des.path.home={_paths(settings)['install']}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and b"org.elasticsearch.server" in cmdline:
            return int(proc.name)
    return None


def wait_for_health(settings: Settings, *, timeout_s: float = 180.0) -> dict:
    """Block until the cluster answers with at least yellow health; raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                f"{settings.es_url}/_cluster/health",
                params={"wait_for_status": "yellow", "timeout": "5s"},
                timeout=10,
                verify=False,
            )
            if response.status_code == 200 and response.json().get("status") in {"yellow", "green"}:
                return response.json()
            last_error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last_error = str(exc)
        time.sleep(1.0)
    raise ConfigurationError(
        f"Elasticsearch at {settings.es_url} not healthy after {timeout_s:.0f}s ({last_error}); "
        f"see {log_file(settings)}"
    )


def start(settings: Settings, *, timeout_s: float = 180.0) -> NodeStatus:
    """Use the node at ``es_url`` if it answers; otherwise install and start the local one."""
    if _ping(settings) is not None:
        return status(settings)
    if not settings.es_is_loopback:
        raise ConfigurationError(
            f"Elasticsearch at {settings.es_url} does not answer and is not local: not starting a node"
        )
    user = ensure_user(settings)
    paths = _install(settings, user)
    java_home = find_java_home(settings)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ES_JAVA_HOME": str(java_home),
        "ES_TMPDIR": str(paths["tmp"]),
        "HOME": str(paths["home"]),
        "LANG": "C.UTF-8",
    }
    command = [str(paths["install"] / "bin" / "elasticsearch"), "-d", "-p", str(paths["pid"])]
    if user is not None:
        command = ["runuser", "-u", user.pw_name, "--", *command]
    console = paths["logs"] / "console.log"
    with open(console, "ab") as out:
        # A session of its own: the node outlives the shell or job that started it (a terminal closed,
        # a CI step's process group killed) and is stopped only by `sas es stop`.
        result = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=paths["home"],
                                start_new_session=True)
    if result.returncode != 0:
        raise ConfigurationError(
            f"Elasticsearch failed to start (exit {result.returncode}); see {console} and {log_file(settings)}"
        )
    wait_for_health(settings, timeout_s=timeout_s)
    return status(settings)


def stop(settings: Settings, *, timeout_s: float = 60.0) -> bool:
    """Stop the node this tool started (by its pid file); ``False`` when none was running."""
    pid = _read_pid(settings)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _read_pid(settings) is None:
            return True
        time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    return True


def status(settings: Settings) -> NodeStatus:
    """Whether ``es_url`` answers, its version and health, and the pid of the node we manage."""
    health = _ping(settings)
    if health is None:
        return NodeStatus(url=settings.es_url, reachable=False, managed_pid=_read_pid(settings),
                          log_file=log_file(settings))
    return NodeStatus(
        url=settings.es_url,
        reachable=True,
        version=_node_version(settings),
        cluster_status=health.get("status"),
        managed_pid=_read_pid(settings),
        log_file=log_file(settings),
    )
