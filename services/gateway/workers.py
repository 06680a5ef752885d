"""GATEWAY_WORKERS=N: N gateway processes on one host sharing the gRPC and HTTP ports (SO_REUSEPORT), one supervisor.

The supervisor binds nothing. It fixes concrete ports (port 0 becomes a
free port picked once, so every worker binds the same one), starts each
worker as `python -m services.gateway` with GATEWAY_REUSE_PORT=1, prints
one READY line with the shared addresses once every worker is ready,
restarts a worker that dies, forwards SIGTERM/SIGINT (and SIGHUP: each worker
reloads its certificate and registry) and exits when all workers have
stopped. The kernel spreads new connections over the workers.

Metrics use prometheus-client's multiprocess mode, not one scrape target
per worker: workers share the HTTP port, so Prometheus (or nginx in front)
could not address one worker's /metrics anyway, and a per-worker metrics
port would make the scrape configuration follow the worker count. In
multiprocess mode each worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR and any worker's /metrics adds them all up, so
one scrape is the whole host and counters stay monotonic across worker
restarts. The costs: gauges must say how to combine (`multiprocess_mode`;
a gauge without one is reported per pid), process_* collectors are not
exported, and a dead worker's live-gauge files are removed here with
`mark_process_dead`.
"""

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import multiprocess

from services.common.grpc_server import announce_ready, bound_address, install_shutdown_signals
from services.common.metrics_http import MULTIPROC_ENV
from services.gateway.config import GatewaySettings

logger = logging.getLogger(__name__)

# A worker that dies sooner than this after starting is crash-looping: back off.
STABLE_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 30.0


def free_port(host: str) -> int:
    """A port free now on host, for workers to share (released at once: the supervisor binds nothing)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), 0))
        return sock.getsockname()[1]


def concrete(address: str) -> str:
    host, _, port = address.rpartition(":")
    return address if int(port) else bound_address(address, free_port(host))


class WorkerFailed(OSError):
    """A worker exited before it was ready (a bad setting, a port taken): nothing is served."""


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM it if the supervisor dies (even by SIGKILL), so none is orphaned."""
    with contextlib.suppress(Exception):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Worker:
    index: int
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.grpc_address = concrete(settings.grpc_address)
        self.http_address = concrete(settings.http_address)
        self.stopping = False
        self.workers = [Worker(i) for i in range(settings.workers)]
        self._own_multiproc_dir: Path | None = None
        self.multiproc_dir = self._prepare_multiproc_dir()

    def _prepare_multiproc_dir(self) -> Path:
        configured = os.environ.get(MULTIPROC_ENV)
        if configured:
            directory = Path(configured)
            directory.mkdir(parents=True, exist_ok=True)
            # Files of an earlier run would be added to this one's counters.
            for stale in directory.glob("*.db"):
                stale.unlink()
            return directory
        self._own_multiproc_dir = Path(tempfile.mkdtemp(prefix="chakong-gateway-metrics-"))
        return self._own_multiproc_dir

    def worker_env(self, worker: Worker) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "GATEWAY_WORKERS": "1",
            "GATEWAY_REUSE_PORT": "1",
            "GATEWAY_GRPC_ADDRESS": self.grpc_address,
            "GATEWAY_HTTP_ADDRESS": self.http_address,
            MULTIPROC_ENV: str(self.multiproc_dir),
        }

    async def spawn(self, worker: Worker) -> None:
        worker.ready.clear()
        worker.started_at = time.monotonic()
        worker.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.gateway",
            env=self.worker_env(worker),
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        logger.info("gateway worker %d started (pid %d)", worker.index, worker.proc.pid)

    async def pump(self, worker: Worker) -> None:
        """Pass the worker's stdout on, except its READY line, which only says the worker is up."""
        assert worker.proc is not None and worker.proc.stdout is not None
        async for raw in worker.proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith("READY "):
                worker.ready.set()
                continue
            sys.stdout.write(line)
            sys.stdout.flush()

    async def run_worker(self, worker: Worker, all_started: asyncio.Event) -> None:
        """Keep one worker running until the supervisor stops; a worker that dies is started again."""
        backoff = 1.0
        while True:
            await self.spawn(worker)
            pump = asyncio.create_task(self.pump(worker))
            code = await worker.proc.wait()
            await pump
            with contextlib.suppress(Exception):
                multiprocess.mark_process_dead(worker.proc.pid, str(self.multiproc_dir))
            if self.stopping:
                logger.info("gateway worker %d (pid %d) stopped: exit %s", worker.index, worker.proc.pid, code)
                return
            if not all_started.is_set():
                raise WorkerFailed(f"gateway worker {worker.index} exited with {code} before it was ready")
            lived = time.monotonic() - worker.started_at
            backoff = 1.0 if lived > STABLE_SECONDS else min(backoff * 2, MAX_BACKOFF_SECONDS)
            worker.restarts += 1
            logger.error("gateway worker %d (pid %d) died: exit %s; restarting in %.0f s",
                         worker.index, worker.proc.pid, code, backoff)
            await asyncio.sleep(backoff)
            if self.stopping:
                return

    def signal_workers(self, sig: int) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(sig)

    async def run(self) -> None:
        shutdown = install_shutdown_signals()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.signal_workers, signal.SIGHUP)
        signalled = asyncio.ensure_future(shutdown.wait())
        all_started = asyncio.Event()
        runs = [asyncio.create_task(self.run_worker(w, all_started)) for w in self.workers]
        ready = asyncio.ensure_future(asyncio.gather(*(w.ready.wait() for w in self.workers)))
        try:
            done, _ = await asyncio.wait([ready, *runs, signalled], return_when=asyncio.FIRST_COMPLETED)
            if ready in done:
                all_started.set()
                announce_ready("gateway", grpc=self.grpc_address, http=self.http_address,
                               scheme=self.settings.scheme, workers=str(len(self.workers)))
                done, _ = await asyncio.wait([*runs, signalled], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task in runs and task.exception() is not None:
                    raise task.exception()
        finally:
            for waiter in (ready, signalled):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
            self.stopping = True
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            logger.info("gateway supervisor stopping %d workers", len(self.workers))
            self.signal_workers(signal.SIGTERM)
            # The workers have their own grace period; after it and a margin, no mercy.
            _, pending = await asyncio.wait(runs, timeout=self.settings.grace_seconds + 10.0)
            if pending:
                self.signal_workers(signal.SIGKILL)
                await asyncio.wait(pending, timeout=5.0)
            for task in runs:
                if not task.done():
                    task.cancel()
            if self._own_multiproc_dir is not None:
                shutil.rmtree(self._own_multiproc_dir, ignore_errors=True)


async def supervise(settings: GatewaySettings) -> None:
    await Supervisor(settings).run()
