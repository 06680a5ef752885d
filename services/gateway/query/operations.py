"""The query API's operations as the door sees them: asking about a debtor, and listing the agencies."""

from protos.gateway.v1 import gateway_pb2
from services.common.validation import validate_subject, validate_token
from services.gateway.access import authz
from services.gateway.access.door import Call, Operation, agency_ids, case_call
from services.gateway.query.metrics import count_refusal
from services.security.ratelimit import QUERY


def _describe_query(request: gateway_pb2.AssetQueryRequest) -> Call:
    validate_subject(request.subject)
    validate_token(request.request_id, "request_id", required=False)
    return case_call(
        authz.QUERY,
        request.case,
        subject=request.subject,
        agency_ids=agency_ids(request.agency_ids),
        request_id=request.request_id,
    )


def _describe_list_agencies(_request: gateway_pb2.ListAgenciesRequest) -> Call:
    return Call(authz.LIST_AGENCIES)


QUERY_ASSETS = Operation(
    authz.QUERY, gateway_pb2.AssetQueryRequest, _describe_query, rate_limit=QUERY, count=count_refusal
)
LIST_AGENCIES = Operation(authz.LIST_AGENCIES, gateway_pb2.ListAgenciesRequest, _describe_list_agencies)

# AssetGateway method name -> operation.
BY_GRPC_METHOD: dict[str, Operation] = {
    "QueryAssets": QUERY_ASSETS,
    "StreamAssets": QUERY_ASSETS,
    "ListAgencies": LIST_AGENCIES,
}
