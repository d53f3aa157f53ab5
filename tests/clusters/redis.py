"""Our own redis-server on a free loopback port, started, stopped and restarted by a test (the
shared Redis on 56379 is never touched). `persistent`: every write is in an append-only file, so
a restart keeps the queues; otherwise a restart starts empty, as after losing the machine."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.clusters.ldap import free_port
from tests.clusters.processes import stop_process


class RedisServer:
    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *persistence,
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server on port {self.port} did not answer")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def restart(self, *, lose_data: bool) -> None:
        """Stop and start on the same port; `lose_data` also throws its files away (a persistent
        server then starts empty too)."""
        self.stop()
        if lose_data:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.start()
