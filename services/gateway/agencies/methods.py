"""Every agency method the gateway calls, taken from the generated service descriptors.

A method renamed or removed in protos/ fails here at import, not at the
first call; request and response types come with the descriptor, so they
cannot disagree with the path. `name` ("bank.Freeze") is what the ledger
stores with an action: it must never change for a method that exists.
"""

from dataclasses import dataclass

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from protos.bank.v1 import bank_pb2
from protos.realestate.v1 import realestate_pb2
from protos.vehicle.v1 import vehicle_pb2

# Agency kind -> its service, as the registry's `kind` names it.
SERVICES: dict[str, ServiceDescriptor] = {
    "bank": bank_pb2.DESCRIPTOR.services_by_name["Bank"],
    "vehicle": vehicle_pb2.DESCRIPTOR.services_by_name["VehicleRegistry"],
    "realestate": realestate_pb2.DESCRIPTOR.services_by_name["RealEstateRegistry"],
}


@dataclass(frozen=True, slots=True)
class AgencyMethod:
    name: str  # "bank.Freeze"
    method_name: str  # "Freeze": the metrics' `method` label
    path: str  # "/chakong.bank.v1.Bank/Freeze"
    request_type: type[Message]
    response_type: type[Message]


def _method(agency_kind: str, name: str) -> AgencyMethod:
    descriptor: MethodDescriptor = SERVICES[agency_kind].methods_by_name[name]
    return AgencyMethod(
        name=f"{agency_kind}.{name}",
        method_name=name,
        path=f"/{descriptor.containing_service.full_name}/{name}",
        request_type=GetMessageClass(descriptor.input_type),
        response_type=GetMessageClass(descriptor.output_type),
    )


# Queries: one per kind.
QUERY = {
    "bank": _method("bank", "QueryAccounts"),
    "vehicle": _method("vehicle", "QueryVehicles"),
    "realestate": _method("realestate", "QueryProperties"),
}

# Control.
BANK_FREEZE = _method("bank", "Freeze")
BANK_RENEW_FREEZE = _method("bank", "RenewFreeze")
BANK_RELEASE_FREEZE = _method("bank", "ReleaseFreeze")
BANK_DEDUCT = _method("bank", "Deduct")
SEAL = {kind: _method(kind, "Seal") for kind in ("vehicle", "realestate")}
RENEW_SEAL = {kind: _method(kind, "RenewSeal") for kind in ("vehicle", "realestate")}
RELEASE_SEAL = {kind: _method(kind, "ReleaseSeal") for kind in ("vehicle", "realestate")}
REALESTATE_TRANSFER = _method("realestate", "Transfer")

# The hold changes feed and the case listing that reconciliation compares with.
HOLD_CHANGES = {
    "bank": _method("bank", "ListFreezeChanges"),
    "vehicle": _method("vehicle", "ListSealChanges"),
    "realestate": _method("realestate", "ListSealChanges"),
}
CASE_HOLDS = {
    "bank": _method("bank", "ListCaseFreezes"),
    "vehicle": _method("vehicle", "ListCaseSeals"),
    "realestate": _method("realestate", "ListCaseSeals"),
}

CONTROL_METHODS: dict[str, AgencyMethod] = {
    method.name: method
    for method in (
        BANK_FREEZE, BANK_RENEW_FREEZE, BANK_RELEASE_FREEZE, BANK_DEDUCT,
        *SEAL.values(), *RENEW_SEAL.values(), *RELEASE_SEAL.values(), REALESTATE_TRANSFER,
    )
}
