"""The agency admin service: an administrator's changes to the agency set, without a restart.

Entries follow the registry file's rules (agencies/registry.py check_entry)
and are always external (the development stack starts no mock for them).
Each change is written to the ledger, so every gateway sharing it applies the
change at its next poll and a restart keeps it; this gateway applies it at
once. The door has already authorized it (admin role) and put it in the
audit trail.
"""

import logging
from collections.abc import Callable

import grpc

from protos.gateway.v1 import admin_pb2, gateway_pb2
from services.common.validation import FieldError
from services.gateway.agencies.registry import KINDS, AgencyConfig, RegistryError, check_entry
from services.gateway.agencies.reload import RegistryReloader
from services.gateway.errors import GatewayError
from services.gateway.ledger import Ledger, ManagedAgency

logger = logging.getLogger(__name__)

ADMIN = "admin"
_KIND_NAMES = {value: name for name, value in KINDS.items()}


def config_of(agency: ManagedAgency) -> AgencyConfig:
    return AgencyConfig(id=agency.agency_id, kind=agency.kind, name=agency.name, address=agency.address,
                        timeout_ms=agency.timeout_ms, external=True, source=ADMIN)


def checked(entry: admin_pb2.AgencyEntry) -> AgencyConfig:
    """The entry by the registry's rules; FieldError names the field (agency.<field>)."""
    fields = {"id": "agency_id", "name": "display_name"}
    document = {
        "id": entry.agency_id,
        # Unknown values fail check_entry's kind rule, which lists the kinds.
        "kind": _KIND_NAMES.get(entry.kind, gateway_pb2.AgencyKind.Name(entry.kind).lower()
                                if entry.kind in gateway_pb2.AgencyKind.values() else str(entry.kind)),
        "name": entry.display_name,
        "address": entry.address,
        "timeout_ms": entry.timeout_ms,
    }
    try:
        return check_entry(document, ADMIN)
    except RegistryError as exc:
        raise FieldError(f"agency.{fields.get(exc.field, exc.field)}", exc.rule) from None


def entry_message(config: AgencyConfig) -> admin_pb2.AgencyEntry:
    return admin_pb2.AgencyEntry(agency_id=config.id, kind=config.kind_value, display_name=config.name,
                                 address=config.address, timeout_ms=config.timeout_ms)


class AgencyAdmin:
    def __init__(self, ledger: Ledger, now_us: Callable[[], int]):
        self.ledger = ledger
        self.now_us = now_us
        # Set by the composition root once the reloader exists (it reads `managed` from here).
        self.reloader: RegistryReloader | None = None

    async def managed(self) -> tuple[int, tuple[AgencyConfig, ...]]:
        """The reloader's source of run-time agencies."""
        revision, agencies = await self.ledger.managed_agencies()
        return revision, tuple(config_of(agency) for agency in agencies)

    def _from_file(self, agency_id: str) -> bool:
        return self.reloader is not None and agency_id in self.reloader.file_ids

    def _record(self, config: AgencyConfig) -> ManagedAgency:
        now = self.now_us()
        return ManagedAgency(agency_id=config.id, kind=config.kind, name=config.name, address=config.address,
                             timeout_ms=config.timeout_ms, created_at_us=now, updated_at_us=now)

    async def register(self, request: admin_pb2.RegisterAgencyRequest) -> AgencyConfig:
        config = checked(request.agency)
        if self._from_file(config.id):
            raise GatewayError(grpc.StatusCode.ALREADY_EXISTS,
                               f"agency.agency_id: {config.id} is in the registry file; change it there")
        if not await self.ledger.register_agency(self._record(config)):
            raise GatewayError(grpc.StatusCode.ALREADY_EXISTS,
                               f"agency.agency_id: {config.id} is already registered; update it instead")
        await self._apply("registered", config)
        return config

    async def update(self, request: admin_pb2.UpdateAgencyRequest) -> AgencyConfig:
        config = checked(request.agency)
        self._refuse_file_entry(config.id)
        if await self.ledger.update_agency(self._record(config)) is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"agency.agency_id: no agency {config.id} was registered here")
        await self._apply("updated", config)
        return config

    async def remove(self, request: admin_pb2.RemoveAgencyRequest) -> AgencyConfig:
        if not request.agency_id:
            raise FieldError("agency_id", "is required")
        self._refuse_file_entry(request.agency_id)
        removed = await self.ledger.remove_agency(request.agency_id)
        if removed is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"agency_id: no agency {request.agency_id} was registered here")
        config = config_of(removed)
        await self._apply("removed", config)
        return config

    def _refuse_file_entry(self, agency_id: str) -> None:
        if self._from_file(agency_id):
            raise GatewayError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"agency_id: {agency_id} comes from the registry file; change it there")

    async def _apply(self, what: str, config: AgencyConfig) -> None:
        logger.warning("agency %s %s at run time: %s %s at %s, timeout %d ms", config.id, what, config.kind,
                       config.name, config.address, config.timeout_ms,
                       extra={"agency": config.id, "change": what})
        if self.reloader is not None:
            await self.reloader.reload(f"agency {config.id} {what}")
