"""The batch API's operations as the door sees them: submitting a batch, reading or cancelling one, and reading a
recorded query (interactive or a batch's row, with its late answers)."""

from protos.gateway.v1 import batch_pb2
from services.common.validation import validate_token
from services.gateway.access import authz
from services.gateway.access.door import Call, Operation, agency_ids
from services.gateway.query.metrics import count_refusal
from services.security.ratelimit import QUERY


def _describe_submit(request: batch_pb2.SubmitBatchRequest) -> Call:
    return Call(authz.SUBMIT_BATCH, agency_ids=agency_ids(request.agency_ids))


def _describer(action: str):
    def describe(request: batch_pb2.GetBatchRequest) -> Call:
        validate_token(request.batch_id, "batch_id", required=True)
        return Call(action, request_id=request.batch_id)

    return describe


# The submission counts once against the query rate limits; its rows are
# then each authorized and audited as a query (batch/service.py), and paced
# by the agencies' quotas rather than the executor's rate.
SUBMIT_BATCH = Operation(authz.SUBMIT_BATCH, batch_pb2.SubmitBatchRequest, _describe_submit, rate_limit=QUERY,
                         count=count_refusal)
LIST_BATCHES = Operation(authz.LIST_BATCHES, batch_pb2.GetBatchRequest, lambda _request: Call(authz.LIST_BATCHES))
READ_BATCH = Operation(authz.READ_BATCH, batch_pb2.GetBatchRequest, _describer(authz.READ_BATCH))
CANCEL_BATCH = Operation(authz.CANCEL_BATCH, batch_pb2.GetBatchRequest, _describer(authz.CANCEL_BATCH))

def _describe_read_query(request: batch_pb2.GetQueryRequest) -> Call:
    validate_token(request.query_id, "query_id", required=True)
    return Call(authz.READ_QUERY, request_id=request.query_id)


READ_QUERY = Operation(authz.READ_QUERY, batch_pb2.GetQueryRequest, _describe_read_query)

# BatchQueries method name -> operation.
BY_GRPC_METHOD: dict[str, Operation] = {
    "SubmitBatch": SUBMIT_BATCH,
    "GetBatch": READ_BATCH,
    "WatchBatch": READ_BATCH,
    "CancelBatch": CANCEL_BATCH,
    "ExportBatch": READ_BATCH,
    "GetQuery": READ_QUERY,
}
