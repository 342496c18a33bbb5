"""A local S3-compatible store (moto's server) and a Dask cluster (a scheduler and workers), each a real process
on 127.0.0.1 with its own working directory, started and stopped by PID. Shared by the tests and `bench/`.

The store's address and its dummy keys reach every process through the environment (`store.env`): s3fs and
botocore read `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from it, so paths stay plain
`s3://bucket/...` URLs. The Dask workers are started with that environment: it is how a real deployment hands
credentials to workers too (never inside the pickled pipeline).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def _wait(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


@dataclass
class ObjectStore:
    """`moto_server` on 127.0.0.1 with one bucket."""

    workdir: Path
    bucket: str = "valuecorpus"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def start(self) -> ObjectStore:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "moto.log", "wb")  # noqa: SIM115 - open for the life of the process
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).read()
                return True
            except urllib.error.HTTPError:  # it answers: it is up
                return True
            except OSError:
                return False

        _wait(up, "moto_server")
        os.environ.update(self.env)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir(self.bucket)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def __enter__(self) -> ObjectStore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class DaskCluster:
    """`dask scheduler` and `workers` × `dask worker` (one thread each, own working directory)."""

    workdir: Path
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def beam_args(self) -> list[str]:
        return ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={self.address}"]

    def _spawn(self, args: list[str], cwd: Path, name: str) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        log = open(cwd / f"{name}.log", "wb")  # noqa: SIM115 - open for the life of the process
        proc = subprocess.Popen([str(BIN / "dask"), *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **self.env})
        self.procs.append(proc)
        return proc

    def start(self) -> DaskCluster:
        self._spawn(["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
                    self.workdir / "scheduler", "scheduler")
        for i in range(self.workers):
            self._spawn(["worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                         "--no-dashboard", "--local-directory", ".", "--name", f"w{i}"],
                        self.workdir / f"worker-{i}", "worker")
        from distributed import Client

        def ready() -> bool:
            try:
                with Client(self.address, timeout=2) as client:
                    return len(client.scheduler_info()["workers"]) >= self.workers
            except OSError:
                return False

        _wait(ready, "the Dask cluster", timeout=90)
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        self.procs.clear()

    def __enter__(self) -> DaskCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
