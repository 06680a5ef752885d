"""Start chakong services as real subprocesses on port 0 and learn their ports."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


class ServiceProcess:
    """One service process; `endpoints` is the JSON of its READY line."""

    def __init__(self, module: str, env: dict[str, str], *, ready_timeout: float = 30.0, cwd: Path | None = None,
                 command: list[str] | None = None):
        self.module = module
        # Another program (an agency in another language) instead of `python -m module`.
        self.command = command or [sys.executable, "-m", module]
        # `python -m` imports from its working directory first: another
        # checkout here runs that checkout's code (bench/fanout.py --compare-checkout).
        self.cwd = cwd or REPO
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.ready_timeout = ready_timeout
        self.output: list[str] = []
        self.endpoints: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self._pump: threading.Thread | None = None

    def start(self) -> "ServiceProcess":
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.output.append(line)
                if line.startswith("READY ") and not ready.is_set():
                    self.endpoints = json.loads(line[len("READY ") :])
                    ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        deadline = time.monotonic() + self.ready_timeout
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.module} did not become ready:\n{''.join(self.output)}")
        return self

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(10)
            self._close_output()

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_output()
        return self.proc.returncode

    def _close_output(self) -> None:
        # The pump ends at EOF; closing the pipe then avoids a ResourceWarning.
        if self._pump is not None:
            self._pump.join(5)
        if self.proc and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
