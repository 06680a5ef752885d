"""The EnforcementPlans gRPC service: the same plans and approvals as the HTTP API (http_api/enforce.py)."""

from protos.gateway.v1 import enforce_pb2, enforce_pb2_grpc
from services.gateway.enforce.batches import BatchPlans
from services.gateway.enforce.service import EnforceService
from services.gateway.grpc_api.door import ADMITTED
from services.gateway.grpc_api.status import answer_errors

SERVICE_NAME = enforce_pb2.DESCRIPTOR.services_by_name["EnforcementPlans"].full_name


class EnforcementPlansServicer(enforce_pb2_grpc.EnforcementPlansServicer):
    def __init__(self, enforce: EnforceService, batches: BatchPlans):
        self._enforce = enforce
        self._batches = batches

    async def Enforce(self, request, context):
        return await answer_errors(context, self._enforce.enforce(request, ADMITTED.get().principal))

    async def GetPlan(self, request, context):
        return await answer_errors(context, self._enforce.get_plan(request.case_number, request.plan_id))

    async def ExecutePlan(self, request, context):
        return await answer_errors(context, self._enforce.execute(request.case_number, request.plan_id))

    async def ListApprovals(self, request, context):
        return await answer_errors(
            context, self._enforce.list_approvals(ADMITTED.get().principal, include_decided=request.all))

    async def Approve(self, request, context):
        return await answer_errors(context, self._enforce.decide(request, ADMITTED.get().principal, approve=True))

    async def Reject(self, request, context):
        return await answer_errors(context, self._enforce.decide(request, ADMITTED.get().principal, approve=False))

    async def EnforceBatch(self, request, context):
        return await answer_errors(context, self._batches.start(ADMITTED.get().principal, request))

    async def GetBatchEnforcement(self, request, context):
        return await answer_errors(context, self._batches.view(ADMITTED.get().principal, request.batch_id))
