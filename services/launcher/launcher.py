"""Start every agency in the registry as a mock, then the gateway; stop them together.

This is the development stack: each agency is its own process with its own
SQLite database under DATA_DIR, seeded on first start from the generator.
An entry marked `external = true` is an agency that runs on its own (one
under development, in any language): no mock is started and no key issued
for it; the gateway calls it at its address, and the banner says whether it
answers its health check.
"""

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from protos.common.v1 import common_pb2
from protos.gateway.v1 import control_pb2, control_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from services import datagen
from services.common.grpc_server import wait_for_shutdown_signal
from services.common.settings import SettingsError, env_address, env_int, env_str
from services.cli.auth import DEV_CA, gateway_channel
from services.common.tls import gateway_client_credentials
from services.gateway.agencies.registry import AgencyConfig, load_registry
from services.security import checkpoints, pki
from services.security.tokens import TokenSigner, write_signing_key

logger = logging.getLogger(__name__)

SERVICE_MODULES = {"bank": "services.bank", "vehicle": "services.vehicle", "realestate": "services.realestate"}
DEMO_CASE = "(2026)皖01执1024号"
DEMO_COURT = "340100"
DEMO_EXECUTOR = "E0001"
DEMO_ADMIN = "A0001"
# The second officer who approves the demo plan's deduction (approver role; the CLI mints their token).
DEMO_APPROVER = "AP0001"


def insecure_plaintext() -> bool:
    """Plaintext to the agencies: INSECURE_PLAINTEXT=1 (every hop) or agencies (the gateway's ports keep TLS)."""
    return os.environ.get("INSECURE_PLAINTEXT", "").strip() in ("1", "agencies")


def plaintext_ports() -> bool:
    return os.environ.get("INSECURE_PLAINTEXT", "").strip() == "1"


def prepare_pki(data_dir: str, agencies: list[AgencyConfig]) -> pki.PkiLayout:
    """The CA, the gateway's and every agency's certificate, and the token signing key, under DATA_DIR/pki.

    Idempotent (init_pki keeps what is valid), so restarts keep identities;
    the token key pair is what `chakong token issue` and the CLI's
    development fallback sign with, and what the gateway verifies with.
    """
    layout = pki.PkiLayout(Path(data_dir) / "pki")
    # An external agency holds its own key: its certificate comes from its request (`chakong pki sign-csr`).
    for action in pki.init_pki(layout.directory, [a.id for a in agencies if not a.external]):
        logger.info("pki %s", action)
    key = layout.directory / "token-signing.key"
    if not key.is_file():
        write_signing_key(key, layout.directory / "token-signing.pub")
    checkpoints.ensure_key(layout.directory)  # the gateway signs the audit head with it
    return layout


def tls_env_for_agency(layout: pki.PkiLayout, agency_id: str) -> dict[str, str]:
    if insecure_plaintext():
        return {"INSECURE_PLAINTEXT": "1"}
    files = layout.agency(agency_id)
    return {"TLS_CERT": str(files.cert), "TLS_KEY": str(files.key), "TLS_CA": str(layout.ca.cert)}


def tls_env_for_gateway(layout: pki.PkiLayout) -> dict[str, str]:
    """The gateway's certificate for its own ports, its client certificate for the agencies, and its keys.

    INSECURE_PLAINTEXT passes through from the launcher's environment as it is.
    """
    server, client = layout.gateway_server, layout.gateway_client
    return {"CHAKONG_TOKEN_PUBLIC_KEY": str(layout.directory / "token-signing.pub"),
            "AUDIT_CHECKPOINT_KEY": str(layout.directory / checkpoints.KEY_NAME),
            "GATEWAY_TLS_CA": str(layout.ca.cert), "GATEWAY_TLS_CERT": str(server.cert),
            "GATEWAY_TLS_KEY": str(server.key),
            "AGENCY_TLS_CA": str(layout.ca.cert), "AGENCY_TLS_CERT": str(client.cert),
            "AGENCY_TLS_KEY": str(client.key)}


def gateway_credentials(layout: pki.PkiLayout) -> grpc.ChannelCredentials | None:
    """How the launcher dials the gateway it started: trusting the development CA, or plaintext behind the flag."""
    return None if plaintext_ports() else gateway_client_credentials(layout.ca.cert)


@dataclass(frozen=True)
class LauncherSettings:
    registry_path: str
    data_dir: str
    seed: int
    subjects: int
    gateway_grpc_address: str
    gateway_http_address: str
    console_http_address: str
    first_metrics_port: int
    ready_timeout_s: int

    @classmethod
    def from_env(cls) -> "LauncherSettings":
        return cls(
            registry_path=env_str("AGENCY_REGISTRY", "config/agencies.toml"),
            data_dir=env_str("DATA_DIR", "var"),
            seed=env_int("SEED", 42),
            subjects=env_int("SUBJECTS", 10_000, minimum=1, maximum=10_000_000),
            gateway_grpc_address=env_address("GATEWAY_GRPC_ADDRESS", "127.0.0.1:50051"),
            gateway_http_address=env_address("GATEWAY_HTTP_ADDRESS", "127.0.0.1:8080"),
            console_http_address=env_address("CONSOLE_HTTP_ADDRESS", "127.0.0.1:8090"),
            first_metrics_port=env_int("FIRST_METRICS_PORT", 9101, minimum=0, maximum=65000),
            ready_timeout_s=env_int("READY_TIMEOUT_S", 300, minimum=1),
        )


class Child:
    """A service process whose output is relayed line by line with its name."""

    def __init__(self, name: str, module: str, env: dict[str, str]):
        self.name, self.module, self.env = name, module, env
        self.process: asyncio.subprocess.Process | None = None
        self.ready: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._relay: asyncio.Task | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module,
            # Text logs read better in a terminal; LOG_FORMAT=json overrides.
            env={"LOG_FORMAT": "text", **os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Own process group: Ctrl-C reaches only the launcher, which then
            # stops children in order instead of all at once.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._relay = asyncio.create_task(self._relay_output())

    async def _relay_output(self) -> None:
        assert self.process and self.process.stdout
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("READY ") and not self.ready.done():
                self.ready.set_result(json.loads(line[len("READY "):]))
                continue
            print(f"[{self.name}] {line}", flush=True)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"{self.name} exited before it was ready"))

    async def restart(self, ready_timeout_s: float) -> None:
        """Start the same service again (same ports, same data) and wait until it is ready."""
        if self._relay:
            with contextlib.suppress(Exception):
                await self._relay
        self.ready = asyncio.get_running_loop().create_future()
        await self.start()
        await asyncio.wait_for(asyncio.shield(self.ready), ready_timeout_s)

    async def exited(self) -> str:
        assert self.process
        await self.process.wait()
        return self.name

    async def stop(self, timeout: float = 10.0) -> None:
        if not self.process or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            logger.warning("%s did not stop in %.0f s; killing it", self.name, timeout)
            self.process.kill()
            await self.process.wait()
        if self._relay:
            with contextlib.suppress(Exception):
                await self._relay


# An agency that dies within STABLE_S of starting waits twice as long before the next start, up to the cap.
RESTART_MIN_S, RESTART_MAX_S, STABLE_S = 1.0, 30.0, 10.0


async def keep_running(child: Child, ready_timeout_s: float) -> None:
    """Start `child` again whenever it exits, with backoff; cancelled when the stack stops."""
    backoff = RESTART_MIN_S
    while True:
        started_at = time.monotonic()
        code = await child.process.wait()
        lived = time.monotonic() - started_at
        backoff = RESTART_MIN_S if lived > STABLE_S else min(backoff * 2, RESTART_MAX_S)
        logger.error("%s exited (code %s) after %.0f s; the gateway and the other agencies go on;"
                     " starting it again in %.0f s", child.name, code, lived, backoff)
        await asyncio.sleep(backoff)
        try:
            await child.restart(ready_timeout_s)
        except (OSError, RuntimeError, asyncio.TimeoutError) as exc:
            logger.error("%s did not start again: %s", child.name, exc)
            continue
        logger.info("%s is back", child.name)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the launcher dies, even by
    SIGKILL, so no agency outlives the stack (Linux prctl PR_SET_PDEATHSIG)."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def agency_child(
    agency: AgencyConfig, settings: LauncherSettings, metrics_port: int, layout: pki.PkiLayout
) -> Child:
    env = {
        **tls_env_for_agency(layout, agency.id),
        "AGENCY_ID": agency.id,
        "AGENCY_NAME": agency.name,
        "GRPC_ADDRESS": agency.address,
        "METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "DATA_DIR": settings.data_dir,
        "SEED": str(settings.seed),
        "SUBJECTS": str(settings.subjects),
    }
    if agency.profile:
        env["BANK_PROFILE"] = agency.profile
    return Child(agency.id, SERVICE_MODULES[agency.kind], env)


async def register_demo_case(gateway: str, credentials, signer: TokenSigner, subjects) -> None:
    """As the court's admin: the demo case, its debtors the showcase subjects, DEMO_EXECUTOR assigned."""
    admin_token = signer.issue(DEMO_ADMIN, DEMO_COURT, ("admin",), ttl_s=300)
    async with gateway_channel(gateway, admin_token, credentials) as channel:
        await control_pb2_grpc.EnforcementControlStub(channel).RegisterCase(
            control_pb2.RegisterCaseRequest(
                case=common_pb2.CaseRef(
                    case_number=DEMO_CASE, court_code=DEMO_COURT, executor_id=DEMO_EXECUTOR, document_number=DEMO_CASE
                ),
                debtors=[
                    common_pb2.Subject(type=s.subject_type, id_number=s.id_number, name=s.name) for s in subjects
                ],
                amount_owed_fen=50_000_000,
                executor_ids=[DEMO_EXECUTOR],
            ),
            timeout=10,
        )


async def showcase_debtors(
    settings: LauncherSettings, gateway: str, credentials, signer: TokenSigner, count: int = 5
) -> list[str]:
    """Seeded debtors with assets, registered as the demo case's debtors and confirmed by a real query."""
    population = datagen.subjects(settings.seed, settings.subjects)
    subjects = datagen.showcase(population, count)
    await register_demo_case(gateway, credentials, signer, subjects)
    lines = []
    async with gateway_channel(gateway, signer.issue(DEMO_EXECUTOR, DEMO_COURT, ttl_s=300), credentials) as channel:
        stub = gateway_pb2_grpc.AssetGatewayStub(channel)
        for subject in subjects:
            response = await stub.QueryAssets(
                gateway_pb2.AssetQueryRequest(
                    case=common_pb2.CaseRef(
                        case_number=DEMO_CASE, court_code=DEMO_COURT, executor_id="E0001", document_number=DEMO_CASE
                    ),
                    subject=common_pb2.Subject(type=subject.subject_type, id_number=subject.id_number, name=subject.name),
                ),
                timeout=10,
            )
            s = response.summary
            lines.append(
                f"  {subject.id_number}  {subject.name}: {s.account_count} accounts, "
                f"{s.vehicle_count} vehicles, {s.property_count} properties"
            )
    return lines


async def launch(settings: LauncherSettings) -> None:
    agencies = load_registry(settings.registry_path)
    layout = prepare_pki(settings.data_dir, agencies)
    signer = TokenSigner.from_file(layout.directory / "token-signing.key")
    # FIRST_METRICS_PORT=0 lets every agency pick a free metrics port.
    mocks = [a for a in agencies if not a.external]
    externals = [a for a in agencies if a.external]
    replicated = [a.id for a in mocks if len(a.endpoints) > 1]
    if replicated:
        raise SettingsError(
            f"{settings.registry_path}: agency {replicated[0]!r}: endpoints: `make run` starts one mock per agency;"
            " list several endpoints only for an agency marked external = true (the tests start replicas themselves)"
        )
    children = [
        agency_child(a, settings, settings.first_metrics_port and settings.first_metrics_port + i, layout)
        for i, a in enumerate(mocks)
    ]
    gateway = Child(
        "gateway",
        "services.gateway",
        {
            "AGENCY_REGISTRY": settings.registry_path,
            "GATEWAY_GRPC_ADDRESS": settings.gateway_grpc_address,
            "GATEWAY_HTTP_ADDRESS": settings.gateway_http_address,
            **tls_env_for_gateway(layout),
        },
    )
    started: list[Child] = []
    try:
        print(f"Starting {len(children)} agencies (first start seeds {settings.subjects:,} subjects)"
              + (f"; {len(externals)} external: {', '.join(a.id for a in externals)}" if externals else "") + "...",
              flush=True)
        for child in children:
            await child.start()
            started.append(child)
        endpoints = await asyncio.wait_for(
            asyncio.gather(*(c.ready for c in children)), settings.ready_timeout_s
        )
        await gateway.start()
        started.append(gateway)
        gateway_endpoints = await asyncio.wait_for(gateway.ready, settings.ready_timeout_s)
        # The console calls the gateway's HTTP API, and signs demo officers in with the development key.
        console = Child("console", "services.console", {
            "CONSOLE_HTTP_ADDRESS": settings.console_http_address,
            "CONSOLE_GATEWAY_URL": f"{gateway_endpoints['scheme']}://{gateway_endpoints['http']}",
            "CONSOLE_GATEWAY_CA": "" if plaintext_ports() else str(layout.ca.cert),
            "CONSOLE_DEV_SIGNING_KEY": str(layout.directory / "token-signing.key"),
        })
        await console.start()
        started.append(console)
        console_endpoints = await asyncio.wait_for(console.ready, settings.ready_timeout_s)
        reachable = await asyncio.gather(*(external_health(a, layout) for a in externals))
        print(banner(mocks, endpoints, gateway_endpoints, list(zip(externals, reachable)),
                     ca=None if plaintext_ports() else layout.ca.cert), flush=True)
        try:
            debtors = await showcase_debtors(settings, gateway_endpoints["grpc"], gateway_credentials(layout), signer)
            print(
                f"Demo case {DEMO_CASE} (court {DEMO_COURT}, executor {DEMO_EXECUTOR}) registered; its debtors,"
                " seeded with assets:\n" + "\n".join(debtors),
                flush=True,
            )
            if debtors:
                first = debtors[0].split()[0]
                key = layout.directory / "token-signing.key"
                # The CLI trusts var/pki/ca.crt unless told otherwise.
                cli = ".venv/bin/chakong" + ("" if plaintext_ports() or layout.ca.cert == DEV_CA
                                             else f" --ca {layout.ca.cert}")
                print(
                    "\nTry (the CLI signs a 15-minute development token with the key in"
                    f" {layout.directory}):\n"
                    f"  {cli} query --subject {first} --case '{DEMO_CASE}'\n"
                    "or with an explicit token:\n"
                    f"  export CHAKONG_TOKEN=$(.venv/bin/chakong token issue --executor {DEMO_EXECUTOR}"
                    f" --court {DEMO_COURT} --signing-key {key})\n"
                    f"  {cli} query --subject {first} --case '{DEMO_CASE}'\n"
                    "One-click 查冻扣 on the demo case: read the plan, execute it, approve its deduction as a"
                    " second officer, see the case triaged:\n"
                    f"  {cli} enforce --case '{DEMO_CASE}' --dry-run\n"
                    f"  {cli} enforce --case '{DEMO_CASE}' --plan <the plan ID it printed>\n"
                    f"  {cli} approvals list --executor {DEMO_APPROVER}\n"
                    f"  {cli} approvals approve <the approval ID> --reason '核实无误' --executor {DEMO_APPROVER}\n"
                    f"  {cli} case show --case '{DEMO_CASE}'\n",
                    flush=True,
                )
        except grpc.aio.AioRpcError as exc:
            logger.warning("could not query showcase debtors: %s", exc.details())
        print(f"Web console: {console_endpoints['url']}  (sign in as the demo executor {DEMO_EXECUTOR},"
              f" open {DEMO_CASE}, press 查询 Query)\n", flush=True)
        print("Press Ctrl-C to stop everything.", flush=True)

        shutdown = asyncio.create_task(wait_for_shutdown_signal())
        # An agency that dies is started again and the stack goes on (the
        # gateway answers it UNAVAILABLE meanwhile); the gateway dying ends it.
        gateway_exit = asyncio.create_task(gateway.exited())
        keepers = [asyncio.create_task(keep_running(c, settings.ready_timeout_s)) for c in started if c is not gateway]
        done, _ = await asyncio.wait([shutdown, gateway_exit], return_when=asyncio.FIRST_COMPLETED)
        for task in [shutdown, gateway_exit, *keepers]:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        if shutdown not in done:
            raise RuntimeError("the gateway exited unexpectedly; stopping the stack")
    finally:
        print("Stopping...", flush=True)
        # The gateway first, so no query is cut short by a vanishing agency.
        await gateway.stop()
        await asyncio.gather(*(c.stop() for c in started if c is not gateway))
        print("Stopped.", flush=True)


async def external_health(agency: AgencyConfig, layout: pki.PkiLayout) -> str:
    """What an external agency's health check says, dialled as the gateway dials it."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from services.common.tls import ClientTls, secure_agency_channel

    if insecure_plaintext():
        channel = grpc.aio.insecure_channel(agency.address)
    else:
        files = layout.gateway_client
        credentials = ClientTls.from_files(layout.ca.cert, files.cert, files.key).credentials()
        channel = secure_agency_channel(agency.address, agency.id, credentials)
    async with channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        except grpc.aio.AioRpcError as exc:
            return f"not answering yet ({exc.code().name}); the gateway keeps trying"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def banner(
    agencies: list[AgencyConfig], endpoints: list[dict], gateway: dict,
    externals: list[tuple[AgencyConfig, str]] = (), *, ca: Path | None,
) -> str:
    """What is up where; `ca` is the CA the gateway's certificate comes from (None: plaintext, the flag)."""
    rows = "\n".join(
        [f"  {a.id:<10} {a.kind:<10} {e['grpc']:<18} metrics http://{e['metrics']}/metrics  {a.name}"
         for a, e in zip(agencies, endpoints)]
        + [f"  {a.id:<10} {a.kind:<10} {a.address:<18} external, health {state}  {a.name}" for a, state in externals]
    )
    transport = f"TLS, CA {ca}" if ca is not None else "PLAINTEXT, INSECURE_PLAINTEXT=1"
    return (
        "\nchakong is up.\n"
        f"  gateway gRPC   {gateway['grpc']}  ({transport}; AssetGateway, health, reflection)\n"
        f"  gateway HTTP   {gateway['scheme']}://{gateway['http']}  (POST /v1/queries,"
        " /v1/queries/stream, GET /v1/agencies, /openapi.json, /metrics)\n"
        f"Agencies:\n{rows}\n"
    )
