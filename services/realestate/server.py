"""The mock real-estate registry's gRPC service: QueryProperties (seals and transfer come next)."""

from protos.realestate.v1 import realestate_pb2, realestate_pb2_grpc
from services.agency.queries import QueryServicer
from services.agency.server import AgencyKind, serve_agency
from services.realestate import store
from services.realestate.config import Settings


class RealEstateRegistryServicer(QueryServicer, realestate_pb2_grpc.RealEstateRegistryServicer):
    async def QueryProperties(self, request, context):
        properties = await self.answer(request, context, "properties", store.properties_of)
        return realestate_pb2.QueryPropertiesResponse(registry_id=self.settings.agency_id, properties=properties)


REAL_ESTATE_REGISTRY = AgencyKind(
    kind="realestate",
    service_name=realestate_pb2.DESCRIPTOR.services_by_name["RealEstateRegistry"].full_name,
    records="properties",
    schema=store.SCHEMA,
    populate=store.populate,
    servicer=RealEstateRegistryServicer,
    add_servicer=realestate_pb2_grpc.add_RealEstateRegistryServicer_to_server,
)


async def serve(settings: Settings) -> None:
    await serve_agency(settings, REAL_ESTATE_REGISTRY)
