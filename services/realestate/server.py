"""The mock real-estate registry's gRPC service: QueryProperties, Seal,
RenewSeal, ReleaseSeal and Transfer."""

import sqlite3

from protos.realestate.v1 import realestate_pb2, realestate_pb2_grpc
from services.agency.holds import SealRegistryServicer
from services.agency.server import AgencyKind, serve_agency
from services.common.validation import (
    MAX_DOCUMENT_NUMBER_CHARS,
    check_identifier,
    require_text,
    validate_amount_fen,
    validate_case,
    validate_subject,
)
from services.realestate import store, transfers
from services.realestate.config import Settings


class RealEstateRegistryServicer(SealRegistryServicer, realestate_pb2_grpc.RealEstateRegistryServicer):
    seal_rules = store.SEAL_RULES

    async def QueryProperties(self, request, context):
        properties = await self.answer(request, context, "properties", store.properties_of)
        return realestate_pb2.QueryPropertiesResponse(registry_id=self.settings.agency_id, properties=properties)

    async def Transfer(self, request, context):
        now_us = self.clock.now_us()

        def validate() -> None:
            validate_case(request.case)
            check_identifier(store.check_certificate_number, request.certificate_number, "certificate_number")
            validate_subject(request.buyer, "buyer", require_name=True)
            require_text(request.ruling_number, "ruling_number", MAX_DOCUMENT_NUMBER_CHARS)
            validate_amount_fen(request.price_fen, "price_fen")

        def apply(conn: sqlite3.Connection, _: None) -> realestate_pb2.PropertyTransfer:
            return transfers.transfer(
                conn,
                certificate_number=request.certificate_number,
                buyer=request.buyer,
                case_number=request.case.case_number,
                court_code=request.case.court_code,
                ruling_number=request.ruling_number,
                price_fen=request.price_fen,
                now_us=now_us,
            )

        def describe(done: realestate_pb2.PropertyTransfer) -> tuple[str, str, str]:
            return (
                ",".join(done.ended_seal_ids),
                done.certificate_number,
                f"transfer {done.transfer_id}: new certificate {done.new_certificate_number},"
                f" {len(done.ended_seal_ids)} seal(s) TRANSFERRED",
            )

        return await self.control(
            context, "Transfer", request, realestate_pb2.PropertyTransfer, now_us=now_us, validate=validate,
            apply=apply, asset_id=request.certificate_number, subject_id=request.buyer.id_number,
            describe=describe,
        )


REAL_ESTATE_REGISTRY = AgencyKind(
    kind="realestate",
    service_name=realestate_pb2.DESCRIPTOR.services_by_name["RealEstateRegistry"].full_name,
    records="properties",
    schema=store.SCHEMA,
    populate=store.populate,
    fixtures=store.FIXTURES,
    servicer=RealEstateRegistryServicer,
    add_servicer=realestate_pb2_grpc.add_RealEstateRegistryServicer_to_server,
)


async def serve(settings: Settings) -> None:
    await serve_agency(settings, REAL_ESTATE_REGISTRY)
