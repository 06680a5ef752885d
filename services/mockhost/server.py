"""Serve many mock banks from one process: one grpc.aio server per bank (its own port), answers made once.

Each bank answers QueryAccounts from the same generator as services.bank
(its own accounts, under its own institution ID), the health Check SERVING,
and an empty hold changes feed and case listing (it takes no control
actions), so a gateway can treat it as any other bank. Everything else is
UNIMPLEMENTED. The cost per call is grpc.aio's and one protobuf parse: the
answers are serialized once, at start (about 6 ms a bank), and no interceptor,
log line or database stands in the way. Requests are not validated beyond
parsing: this is a load generator's peer, not a reference agency
(services/bank is that).
"""

import asyncio
import logging
import random
from collections import defaultdict

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client import Counter

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from services import datagen
from services.common.grpc_server import announce_ready, bound_address, install_shutdown_signals, server_options
from services.common.metrics_http import start_metrics_server
from services.mockhost.config import HostSettings

logger = logging.getLogger(__name__)

MOCK_CALLS = Counter(
    "chakong_mockhost_calls_total",
    "Queries the mock host's banks received, by outcome: ok, error (injected), cancelled (the caller went away"
    " or cut the call off while the bank was still answering).",
    ["outcome"],
)
OUTCOMES = ("ok", "error", "cancelled")

_SERVICE = "/chakong.bank.v1.Bank/"
_SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING).SerializeToString()


class MockBank:
    """One bank's identity and its answers, serialized: its accounts by the holder's ID number."""

    def __init__(self, agency_id: str, name: str, seed: int, population):
        self.agency_id = agency_id
        self.name = name
        accounts = defaultdict(list)
        for a in datagen.bank_accounts(seed, population, agency_id, name, "bank"):
            accounts[a.owner_id_number].append(bank_pb2.Account(
                account_number=a.account_number, type=a.account_type, currency=a.currency,
                balance_fen=a.balance_fen, available_balance_fen=a.balance_fen, frozen_fen=0,
                status=a.status, branch=a.branch, opened_on=a.opened_on,
            ))
        self.answers = {
            owner: bank_pb2.QueryAccountsResponse(institution_id=agency_id, accounts=found).SerializeToString()
            for owner, found in accounts.items()
        }
        self.empty = bank_pb2.QueryAccountsResponse(institution_id=agency_id).SerializeToString()


class _Handlers(grpc.GenericRpcHandler):
    """The methods of one bank, made once; grpc asks for them on every call."""

    def __init__(self, bank: MockBank, settings: HostSettings):
        ok, error, cancelled = (MOCK_CALLS.labels(outcome) for outcome in OUTCOMES)
        parse = bank_pb2.QueryAccountsRequest.FromString
        straggler_rate, straggler_s = settings.straggler_rate, settings.straggler_ms / 1000
        error_rate, error_code = settings.error_rate, settings.error_code
        chance = random.random
        answers, empty = bank.answers, bank.empty

        async def query(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            subject = parse(request).subject.id_number
            if error_rate and chance() < error_rate:
                error.inc()
                await context.abort(error_code, f"injected failure at {bank.agency_id}")
            if straggler_rate and chance() < straggler_rate:
                try:
                    await asyncio.sleep(straggler_s)
                except asyncio.CancelledError:
                    cancelled.inc()
                    raise
            ok.inc()
            return answers.get(subject, empty)

        async def serving(request: bytes, context) -> bytes:
            return _SERVING

        async def no_changes(request: bytes, context) -> bytes:
            after = _cursor_asked(request)
            if after:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    f"after_cursor {after} is ahead of the feed: {bank.agency_id} has no changes")
            return b""

        async def no_holds(request: bytes, context) -> bytes:
            return b""

        unary = grpc.unary_unary_rpc_method_handler
        self._methods = {
            _SERVICE + "QueryAccounts": unary(query),
            _SERVICE + "ListFreezeChanges": unary(no_changes),
            _SERVICE + "ListCaseFreezes": unary(no_holds),
            "/grpc.health.v1.Health/Check": unary(serving),
        }

    def service(self, handler_call_details):
        return self._methods.get(handler_call_details.method)


def _cursor_asked(request: bytes) -> int:
    return common_pb2.HoldChangesRequest.FromString(request).after_cursor


def registry_text(banks: list[MockBank], endpoints: dict[str, list[str]], timeout_ms: int) -> str:
    """The gateway's registry for these banks: one entry each, every replica's endpoint in it."""
    entries = []
    for bank in banks:
        addresses = endpoints[bank.agency_id]
        where = (f'address = "{addresses[0]}"' if len(addresses) == 1
                 else "endpoints = [" + ", ".join(f'"{a}"' for a in addresses) + "]")
        entries.append(f'[[agency]]\nid = "{bank.agency_id}"\nkind = "bank"\nname = "{bank.name}"\n'
                       f"{where}\ntimeout_ms = {timeout_ms}\n")
    return "\n".join(entries)


async def serve(settings: HostSettings) -> None:
    """Start every bank's server, write the registry, announce, run until SIGTERM or SIGINT."""
    population = datagen.subjects(settings.seed, settings.subjects)
    banks = [MockBank(settings.agency_id(i), f"Mock bank {i}", settings.seed, population)
             for i in range(settings.agencies)]
    for outcome in OUTCOMES:
        MOCK_CALLS.labels(outcome)
    servers: list[grpc.aio.Server] = []
    endpoints: dict[str, list[str]] = {}
    try:
        for bank in banks:
            handlers = _Handlers(bank, settings)
            for _ in range(settings.replicas):
                server = grpc.aio.server(options=server_options())
                server.add_generic_rpc_handlers((handlers,))
                port = server.add_insecure_port(f"{settings.bind_host}:0")
                if port == 0:
                    raise OSError(f"cannot bind a port on {settings.bind_host} for {bank.agency_id}")
                await server.start()
                servers.append(server)
                endpoints.setdefault(bank.agency_id, []).append(bound_address(f"{settings.bind_host}:0", port))
        settings.registry_path.write_text(registry_text(banks, endpoints, settings.timeout_ms), encoding="utf-8")
        metrics_port = start_metrics_server(settings.metrics_address)
        shutdown = install_shutdown_signals()
        announce_ready(
            "mockhost", agencies=str(settings.agencies), replicas=str(settings.replicas),
            registry=str(settings.registry_path), metrics=bound_address(settings.metrics_address, metrics_port),
        )
        await shutdown.wait()
    finally:
        await asyncio.gather(*(server.stop(0) for server in servers))
    logger.info("mock host stopped: %d banks", len(banks))
