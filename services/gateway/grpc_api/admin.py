"""The AgencyAdmin gRPC service: register, update and remove agencies at run time (admin role)."""

from protos.gateway.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2
from services.gateway.admin.service import AgencyAdmin, entry_message
from services.gateway.agencies.registry import AgencyConfig
from services.gateway.grpc_api.status import answer_errors

SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["AgencyAdmin"].full_name


def agency_message(config: AgencyConfig) -> gateway_pb2.Agency:
    """As ListAgencies shows it, a moment before the gateway's first call to it."""
    return gateway_pb2.Agency(agency_id=config.id, kind=config.kind_value, display_name=config.name,
                              address=config.address, timeout_ms=config.timeout_ms, health="up",
                              source=config.source, external=True)


class AgencyAdminServicer(admin_pb2_grpc.AgencyAdminServicer):
    def __init__(self, admin: AgencyAdmin):
        self._admin = admin

    async def RegisterAgency(self, request, context):
        return agency_message(await answer_errors(context, self._admin.register(request)))

    async def UpdateAgency(self, request, context):
        return agency_message(await answer_errors(context, self._admin.update(request)))

    async def RemoveAgency(self, request, context):
        removed = await answer_errors(context, self._admin.remove(request))
        return admin_pb2.RemoveAgencyResponse(removed=entry_message(removed))
