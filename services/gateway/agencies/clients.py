"""Long-lived channels to the agencies and one query adapter per agency kind."""

import logging
from collections.abc import Callable, Iterable

import grpc
from google.protobuf.message import Message

from protos.bank.v1 import bank_pb2
from protos.gateway.v1 import gateway_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2
from services.gateway.agencies.calls import AgencyCall
from services.gateway.agencies.hedging import HedgedCall, HedgePolicy
from services.gateway.agencies.health import AgencyHealth, EjectionPolicy
from services.gateway.agencies.methods import QUERY, AgencyMethod
from services.gateway.agencies.metrics import register_agency
from services.gateway.agencies.quotas import AgencyQuota
from services.gateway.agencies.registry import AgencyConfig
from services.gateway.agencies.replicas import BalancedCall, Endpoint, ReplicaHealth
from services.gateway.agencies.tls import open_agency_channel

logger = logging.getLogger(__name__)

DEFAULT_POLICY = EjectionPolicy()
DEFAULT_HEDGING = HedgePolicy()

# The agencies are long-lived peers: keep connections up, ping rarely (at the
# servers' default minimum ping interval, so they never answer too_many_pings),
# reconnect promptly after an agency restarts, and leave retries to tenacity
# (one retry layer, so no transparent gRPC retries).
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
)

# QueryAccountsRequest, QueryVehiclesRequest and QueryPropertiesRequest share
# one wire layout (1 request_id, 2 case, 3 subject), so a query is encoded
# once and the same bytes go to every agency whatever its kind.
QueryRequest = bank_pb2.QueryAccountsRequest
_QUERY_REQUEST_TYPES = tuple(method.request_type for method in QUERY.values())


def check_query_requests_share_layout() -> None:
    """Fail loudly if a contract change breaks the encode-once shortcut."""

    def layout(message_type: type[Message]):
        return [
            (f.number, f.name, f.type, f.message_type.full_name if f.message_type else None)
            for f in message_type.DESCRIPTOR.fields
        ]

    expected = layout(_QUERY_REQUEST_TYPES[0])
    for message_type in _QUERY_REQUEST_TYPES[1:]:
        if layout(message_type) != expected:
            raise RuntimeError(
                f"{message_type.DESCRIPTOR.full_name} no longer matches the wire layout of "
                f"{_QUERY_REQUEST_TYPES[0].DESCRIPTOR.full_name}; encode it separately"
            )


def _fill_accounts(response: bank_pb2.QueryAccountsResponse, result: gateway_pb2.AgencyResult) -> None:
    result.accounts.extend(response.accounts)


def _fill_vehicles(response: vehicle_pb2.QueryVehiclesResponse, result: gateway_pb2.AgencyResult) -> None:
    result.vehicles.extend(response.vehicles)


def _fill_properties(response: realestate_pb2.QueryPropertiesResponse, result: gateway_pb2.AgencyResult) -> None:
    result.properties.extend(response.properties)


# How each kind's query answer fills an AgencyResult.
FILL: dict[str, Callable[[Message, gateway_pb2.AgencyResult], None]] = {
    "bank": _fill_accounts,
    "vehicle": _fill_vehicles,
    "realestate": _fill_properties,
}


class AgencyClient:
    """One agency: its endpoints (channel and health each), its query method and its metric children."""

    __slots__ = ("config", "id", "kind", "name", "timeout_s", "query", "fill", "endpoints", "health", "quota",
                 "_calls")

    def __init__(
        self,
        config: AgencyConfig,
        policy: EjectionPolicy = DEFAULT_POLICY,
        credentials: grpc.ChannelCredentials | None = None,
        hedging: HedgePolicy = DEFAULT_HEDGING,
    ):
        self.config = config
        self.id = config.id
        self.kind = config.kind_value
        self.name = config.name
        self.timeout_s = config.timeout_ms / 1000
        # Every series of the agency, at zero, before anything can count in one.
        register_agency(config.id, config.kind)
        # One quota for the agency, whichever endpoint a call goes to.
        self.quota = AgencyQuota.of(config.id, config.max_concurrent, config.max_calls_per_second)
        several = len(config.endpoints) > 1
        self.endpoints = tuple(
            # mTLS naming config.id when credentials are given (tls.py); plaintext only without.
            self._open_endpoint(address, credentials, policy, several) for address in config.endpoints
        )
        # The request arrives already encoded (see QueryRequest): no serializer.
        if several:
            self.health = ReplicaHealth(config.id, self.endpoints)
            query = BalancedCall(config.id, QUERY[config.kind], self.endpoints, encoded=True, quota=self.quota)
        else:
            self.health = self.endpoints[0].health
            query = self.endpoints[0].call(config.id, QUERY[config.kind], encoded=True, quota=self.quota)
        hedged = hedging.enabled if config.hedge is None else config.hedge
        self.query = HedgedCall(query, hedging, fixed_delay_s=config.hedge_delay_ms / 1000) if hedged else query
        self.fill = FILL[config.kind]
        self._calls: dict[str, BalancedCall] = {}

    def _open_endpoint(self, address: str, credentials, policy: EjectionPolicy, several: bool) -> Endpoint:
        channel = open_agency_channel(self.config, credentials, CHANNEL_OPTIONS, address)
        health = AgencyHealth(self.id, channel, self.timeout_s, policy,
                              **({"endpoint": address, "on_change": lambda: self.health.changed()} if several else {}))
        # Start connecting now, so the first query does not pay for it.
        channel.get_state(try_to_connect=True)
        return Endpoint(address, channel, health)

    def call(self, method: AgencyMethod) -> AgencyCall | BalancedCall:
        """The control `method` on this agency (over its endpoints, one per attempt), made once. Never hedged."""
        if len(self.endpoints) == 1:
            return self.endpoints[0].call(self.id, method, quota=self.quota)
        call = self._calls.get(method.name)
        if call is None:
            call = self._calls[method.name] = BalancedCall(self.id, method, self.endpoints, encoded=False,
                                                             quota=self.quota)
        return call

    async def close_channels(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.channel.close()


class AgencyClients:
    """Every agency in registry order; the channels live as long as this object."""

    def __init__(
        self,
        configs: Iterable[AgencyConfig],
        policy: EjectionPolicy = DEFAULT_POLICY,
        credentials: grpc.ChannelCredentials | None = None,
        hedging: HedgePolicy = DEFAULT_HEDGING,
    ):
        check_query_requests_share_layout()
        self.policy = policy
        self.credentials = credentials
        self.hedging = hedging
        self.all: tuple[AgencyClient, ...] = tuple(self.open(config) for config in configs)
        self.by_id: dict[str, AgencyClient] = {client.id: client for client in self.all}
        logger.debug("opened channels to %d agencies", len(self.all))

    def open(self, config: AgencyConfig) -> AgencyClient:
        """A client made the way every client here is made; a registry reload opens new agencies with it."""
        return AgencyClient(config, self.policy, self.credentials, self.hedging)

    def replace(self, clients: tuple[AgencyClient, ...]) -> None:
        """Swap in a reloaded set; queries already prepared keep the clients they started with."""
        self.all = clients
        self.by_id = {client.id: client for client in clients}

    async def close(self) -> None:
        for client in self.all:
            await client.health.close()
            await client.close_channels()
        logger.debug("closed channels to %d agencies", len(self.all))
