"""The admin API's operations as the door sees them: each names the agency it changes, for the audit trail."""

from protos.gateway.v1 import admin_pb2
from services.gateway.access import authz
from services.gateway.access.door import Call, Operation, agency_ids


def _entry_call(action: str):
    return lambda request: Call(action, agency_ids=agency_ids([request.agency.agency_id] if request.agency.agency_id
                                                              else []))


REGISTER_AGENCY = Operation(authz.REGISTER_AGENCY, admin_pb2.RegisterAgencyRequest, _entry_call(authz.REGISTER_AGENCY))
UPDATE_AGENCY = Operation(authz.UPDATE_AGENCY, admin_pb2.UpdateAgencyRequest, _entry_call(authz.UPDATE_AGENCY))
REMOVE_AGENCY = Operation(
    authz.REMOVE_AGENCY, admin_pb2.RemoveAgencyRequest,
    lambda request: Call(authz.REMOVE_AGENCY, agency_ids=agency_ids([request.agency_id] if request.agency_id else [])),
)

# AgencyAdmin method name -> operation.
BY_GRPC_METHOD: dict[str, Operation] = {
    "RegisterAgency": REGISTER_AGENCY,
    "UpdateAgency": UPDATE_AGENCY,
    "RemoveAgency": REMOVE_AGENCY,
}
