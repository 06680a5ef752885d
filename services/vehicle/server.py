"""The mock vehicle registry's gRPC service: QueryVehicles, Seal, RenewSeal, ReleaseSeal."""

from protos.vehicle.v1 import vehicle_pb2, vehicle_pb2_grpc
from services.agency.holds import SealRegistryServicer
from services.agency.server import AgencyKind, serve_agency
from services.vehicle import store
from services.vehicle.config import Settings


class VehicleRegistryServicer(SealRegistryServicer, vehicle_pb2_grpc.VehicleRegistryServicer):
    seal_rules = store.SEAL_RULES

    async def QueryVehicles(self, request, context):
        vehicles = await self.answer(request, context, "vehicles", store.vehicles_of)
        return vehicle_pb2.QueryVehiclesResponse(registry_id=self.settings.agency_id, vehicles=vehicles)


VEHICLE_REGISTRY = AgencyKind(
    kind="vehicle",
    service_name=vehicle_pb2.DESCRIPTOR.services_by_name["VehicleRegistry"].full_name,
    records="vehicles",
    schema=store.SCHEMA,
    populate=store.populate,
    fixtures=store.FIXTURES,
    servicer=VehicleRegistryServicer,
    add_servicer=vehicle_pb2_grpc.add_VehicleRegistryServicer_to_server,
)


async def serve(settings: Settings) -> None:
    await serve_agency(settings, VEHICLE_REGISTRY)
