"""A private RabbitMQ node for the broker-restart run: its own port, data and logs in a
temp dir, so killing it disturbs nobody else on the machine. Needs the Debian
`rabbitmq-server` package and root (the server drops to the `rabbitmq` user, which must
own the folder)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class PrivateRabbit:
    """``start()``, ``kill()`` (SIGKILL: a crash, recovered from disk on the next start),
    ``stop()`` (at the end; removes the folder)."""

    def __init__(self) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        self.port, self.dist_port = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ws-rabbit-"))
        self.node = f"wsbench{self.port}@localhost"
        (self.dir / "mnesia").mkdir()
        (self.dir / "log").mkdir()
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        shutil.chown(self.dir, "rabbitmq", "rabbitmq")
        for path in self.dir.rglob("*"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 180) -> float:
        """Start the node and wait for its listener; seconds it took."""
        env = {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        t0 = time.monotonic()
        with (self.dir / "out.log").open("ab") as out:
            self.proc = subprocess.Popen(
                ["rabbitmq-server"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                raise RuntimeError(
                    f"RabbitMQ did not start: {(self.dir / 'out.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        return time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL the node: the Erlang VM's process group (the server script runs it as
        the ``rabbitmq`` user in a session of its own; its helpers exit with it), then
        what this object started."""
        pid_file = self.dir / "pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(os.getpgid(int(pid_file.read_text().strip())), signal.SIGKILL)
            pid_file.unlink()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
