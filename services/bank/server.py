"""The mock bank's gRPC service: QueryAccounts (freeze and deduct come next)."""

from protos.bank.v1 import bank_pb2, bank_pb2_grpc
from services.agency.queries import QueryServicer
from services.agency.server import AgencyKind, serve_agency
from services.bank import store
from services.bank.config import Settings


class BankServicer(QueryServicer, bank_pb2_grpc.BankServicer):
    async def QueryAccounts(self, request, context):
        accounts = await self.answer(request, context, "accounts", store.accounts_of)
        return bank_pb2.QueryAccountsResponse(institution_id=self.settings.agency_id, accounts=accounts)


BANK = AgencyKind(
    kind="bank",
    service_name=bank_pb2.DESCRIPTOR.services_by_name["Bank"].full_name,
    records="accounts",
    schema=store.SCHEMA,
    populate=store.populate,
    servicer=BankServicer,
    add_servicer=bank_pb2_grpc.add_BankServicer_to_server,
)


async def serve(settings: Settings) -> None:
    await serve_agency(settings, BANK)
