"""A managed local Label Studio server: started on loopback, data under the data home, stopped by its PID.

Label Studio lives in its own venv (it pins openai<2 and pyarrow<25), so it runs as a separate process. Facts
this module relies on (measured on 1.23.2): `--internal-host` is the bind address (`--host` is only the public
URL); a busy port makes it silently move to the next one, so the port is checked first; a fresh data dir takes
~40 s of migrations before `/health` answers; a fresh data dir with LABEL_STUDIO_USERNAME/PASSWORD/USER_TOKEN
and legacy tokens enabled gets an admin with a known API token, so no browser is needed.

Files under `<home>/annotation/`: `labelstudio/` (the server's data dir), `server.json` (PID, port, URL),
`credentials.json` (mode 0600: username, password, token; never printed or logged), `server.log`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valuecorpus.schemas.errors import EndpointError, SettingsError
from valuecorpus.schemas.layout import pid_alive, utc_now, write_json_atomic

ADMIN_USER = "curator@valuecorpus.local"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    token: str

    def __repr__(self) -> str:  # secrets never reach a log or a traceback
        return f"Credentials(username={self.username!r}, password='***', token='***')"


class ServerFiles:
    """Where a managed server keeps its state under the data home."""

    def __init__(self, annotation_dir: str | Path) -> None:
        self.root = Path(annotation_dir)
        self.data_dir = self.root / "labelstudio"
        self.state = self.root / "server.json"
        self.credentials = self.root / "credentials.json"
        self.log = self.root / "server.log"

    def read_state(self) -> dict[str, Any] | None:
        if not self.state.exists():
            return None
        return json.loads(self.state.read_text(encoding="utf-8"))

    def read_credentials(self) -> Credentials | None:
        if not self.credentials.exists():
            return None
        data = json.loads(self.credentials.read_text(encoding="utf-8"))
        return Credentials(data["username"], data["password"], data["token"])

    def write_credentials(self, creds: Credentials) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.credentials.with_name(f".{self.credentials.name}.tmp")
        # Created 0600 from the start: the secret is never readable by others, not even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"username": creds.username, "password": creds.password, "token": creds.token}, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.credentials)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the server itself binds: sockets of a server stopped moments ago linger in TIME-WAIT
        # for about a minute, which would otherwise read as busy; a listening socket still refuses the bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # something on 0.0.0.0 or another stack
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as resp:
            return json.loads(resp.read().decode()).get("status") == "UP"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def server_alive(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a recycled PID running something else is not our server
        text = cmdline.read_bytes().replace(b"\0", b" ")
        if b"label-studio" not in text and b"label_studio" not in text:
            return False
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return False
    return True


def status(files: ServerFiles) -> dict[str, Any]:
    state = files.read_state()
    if state is None:
        return {"running": False, "reason": "not started"}
    alive = server_alive(int(state["pid"]))
    healthy = alive and health(state["url"])
    return {**state, "running": alive, "healthy": healthy}


def start(files: ServerFiles, executable: str | Path, port: int, timeout: float = 240.0) -> dict[str, Any]:
    """Start Label Studio on 127.0.0.1:`port` and wait until it is healthy; returns the state record."""
    current = status(files)
    if current.get("running"):
        if current.get("healthy") or _wait_healthy(current["url"], int(current["pid"]), 60):
            return {**current, "already_running": True}
        raise EndpointError(f"a Label Studio started earlier (pid {current['pid']}) is not healthy; see {files.log}")
    executable = Path(executable)
    if not executable.exists():
        raise SettingsError(
            f"Label Studio executable not found at {executable}: create its venv with "
            "`python3 -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install -r requirements/labelstudio.txt`"
        )
    if not port_is_free(port):
        raise EndpointError(
            f"port {port} on 127.0.0.1 is busy; choose another with --port or the setting label_studio_port"
        )
    files.data_dir.mkdir(parents=True, exist_ok=True)
    creds = files.read_credentials()
    if creds is None:
        creds = Credentials(ADMIN_USER, secrets.token_urlsafe(18), secrets.token_hex(20))
        files.write_credentials(creds)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))},
        "LABEL_STUDIO_BASE_DATA_DIR": str(files.data_dir.resolve()),
        "LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        # Read on a fresh data dir only: the admin account and its API token (secrets via env, never argv).
        "LABEL_STUDIO_USERNAME": creds.username,
        "LABEL_STUDIO_PASSWORD": creds.password,
        "LABEL_STUDIO_USER_TOKEN": creds.token,
    }
    url = f"http://127.0.0.1:{port}"
    with open(files.log, "ab") as log:
        proc = subprocess.Popen(
            [str(executable), "start", "--internal-host", "127.0.0.1", "--port", str(port), "--no-browser"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its own process group: stop() signals the group by this PID
        )
    state = {"pid": proc.pid, "port": port, "url": url, "started_at": utc_now(),
             "data_dir": str(files.data_dir), "log": str(files.log)}
    write_json_atomic(files.state, state)
    if not _wait_healthy(url, proc.pid, timeout, proc):
        code = proc.poll()
        _terminate(proc.pid)
        files.state.unlink(missing_ok=True)
        why = f"exited with code {code}" if code is not None else f"not healthy after {timeout:.0f} s"
        raise EndpointError(f"Label Studio {why}; see {files.log}")
    return {**state, "running": True, "healthy": True}


def _wait_healthy(url: str, pid: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if proc is None and not server_alive(pid):
            return False
        if health(url, timeout=2):
            return True
        time.sleep(0.5)
    return False


def _terminate(pid: int, grace: float = 20.0) -> bool:
    """SIGTERM the server's process group, wait, then SIGKILL. True if it was running."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return True


def stop(files: ServerFiles) -> bool:
    """Stop the managed server by its recorded PID. False if none was running."""
    state = files.read_state()
    if state is None:
        return False
    pid = int(state["pid"])
    was_running = server_alive(pid) and _terminate(pid)
    files.state.unlink(missing_ok=True)
    return was_running
