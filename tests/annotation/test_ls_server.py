"""The managed server (loopback, secrets kept, busy port refused) and the connection's failure paths."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

from conftest import LS_EXECUTABLE, run_cli
from curation_samples import stage_run

from valuecorpus.annotation.server import free_port


def _listening_addresses(port: int) -> set[str]:
    """Local addresses listening on `port` (from /proc/net/tcp*: state 0A = LISTEN)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            addr, port_hex = parts[1].rsplit(":", 1)
            if parts[3] == "0A" and int(port_hex, 16) == port:
                out.add(addr)
    return out


def test_managed_server_binds_loopback_and_keeps_its_secrets(label_studio) -> None:
    state = json.loads(label_studio.files.state.read_text())
    assert state["pid"] == label_studio.pid and state["url"] == f"http://127.0.0.1:{state['port']}"
    assert _listening_addresses(state["port"]) == {"0100007F"}, "must listen on 127.0.0.1 only"
    assert (label_studio.home / "annotation" / "labelstudio" / "label_studio.sqlite3").exists()
    environ = Path(f"/proc/{label_studio.pid}/environ").read_bytes().split(b"\0")
    assert b"LATEST_VERSION_CHECK=false" in environ
    creds = label_studio.files.credentials
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    secret = json.loads(creds.read_text())
    for text in (label_studio.start_output, label_studio.files.log.read_text(errors="replace"),
                 label_studio.files.state.read_text()):
        assert secret["password"] not in text and secret["token"] not in text
    assert label_studio.start_seconds > 0
    res = run_cli("annotation", "server", "status", env={"VALUECORPUS_HOME": str(label_studio.home)})
    assert res.code == 0 and "running at http://127.0.0.1:" in res.stdout and "healthy" in res.stdout
    again = run_cli("annotation", "server", "start", "--label-studio", str(LS_EXECUTABLE),
                    env={"VALUECORPUS_HOME": str(label_studio.home)})
    assert again.code == 0 and f"already running at {label_studio.url} (pid {label_studio.pid})" in again.stdout
    # the token provisioned without a browser works
    assert label_studio.client.users.whoami().email == secret["username"]


def test_busy_port_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        res = run_cli("annotation", "server", "start", "--port", str(port), "--label-studio", str(LS_EXECUTABLE),
                      env={"VALUECORPUS_HOME": str(home)})
    assert res.code != 0
    assert res.stderr.count("\n") == 1 and f"port {port} on 127.0.0.1 is busy" in res.stderr
    assert not (home / "annotation").exists()


def test_missing_executable_is_one_clear_error(tmp_path: Path) -> None:
    res = run_cli("annotation", "server", "start", "--port", str(free_port()), "--label-studio",
                  str(tmp_path / "nope" / "label-studio"), env={"VALUECORPUS_HOME": str(tmp_path / "home")})
    assert res.code != 0 and res.stderr.startswith("error: Label Studio executable not found")
    assert "Traceback" not in res.stderr


def _staged(home: Path) -> Path:
    return stage_run(home / "runs", "r1", {"dilemma": 2}).path


def test_wrong_token_fails_cleanly_and_writes_nothing(label_studio, tmp_path: Path) -> None:
    run = _staged(tmp_path / "home")
    env = {"VALUECORPUS_HOME": str(tmp_path / "home"), "LABEL_STUDIO_URL": label_studio.url,
           "LABEL_STUDIO_API_KEY": "0" * 40}
    for cmd in ("push", "pull", "adjudicate"):
        res = run_cli("curate", cmd, "r1", env=env)
        assert res.code == 3, res.stderr
        assert res.stderr.count("\n") == 1 and "refused the API key" in res.stderr
        assert "0" * 40 not in res.stderr
    assert not (run / "curation").exists()


def test_server_down_fails_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    run = _staged(tmp_path / "home")
    env = {"VALUECORPUS_HOME": str(tmp_path / "home"), "LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}",
           "LABEL_STUDIO_API_KEY": "x" * 40}
    res = run_cli("curate", "push", "r1", env=env)
    assert res.code == 3 and res.stderr.count("\n") == 1 and "is not reachable" in res.stderr
    assert not (run / "curation").exists()
    res = run_cli("curate", "push", "r1", env={"VALUECORPUS_HOME": str(tmp_path / "home"),
                                               "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""})
    assert res.code == 3 and "valuecorpus annotation server start" in res.stderr
    assert not (run / "curation").exists()


def test_managed_connection_is_used_without_settings(label_studio) -> None:
    stage_run(label_studio.home / "runs", "managed-run", {"values_card": 2})
    env = {"VALUECORPUS_HOME": str(label_studio.home), "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""}
    res = run_cli("curate", "push", "managed-run", env=env)
    assert res.code == 0, res.stderr
    assert "values_card: project" in res.stdout and "2 added" in res.stdout


def test_restart_right_after_stop_and_status_exit_codes(label_studio) -> None:
    """Stop, then start again on the same port at once: the stopped server's sockets in TIME-WAIT must not read
    as a busy port. `status` exits non-zero while nothing runs. (Uses the session server: no extra fresh start.)"""
    import time

    from valuecorpus.annotation.server import port_is_free, server_alive

    env = {"VALUECORPUS_HOME": str(label_studio.home), "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""}
    port = json.loads(label_studio.files.state.read_text())["port"]
    label_studio.client.users.whoami()  # a connection, so the stopped server leaves sockets behind
    assert run_cli("annotation", "server", "stop", env=env).code == 0
    stopped = time.monotonic()
    assert not server_alive(label_studio.pid)
    status = run_cli("annotation", "server", "status", env=env)
    assert status.code != 0 and "not running" in status.stdout
    assert port_is_free(port)
    started_after = time.monotonic() - stopped
    res = run_cli("annotation", "server", "start", "--port", str(port), "--label-studio", str(LS_EXECUTABLE),
                  "--timeout", "300", env=env, timeout=360)
    assert started_after < 10, f"start issued {started_after:.1f} s after stop"
    assert res.code == 0, res.stderr
    state = json.loads(label_studio.files.state.read_text())
    assert state["port"] == port and state["url"] == label_studio.url
    label_studio.pid = int(state["pid"])  # the session fixture stops this one at the end
    assert run_cli("annotation", "server", "status", env=env).code == 0
    assert label_studio.client.users.whoami().email
