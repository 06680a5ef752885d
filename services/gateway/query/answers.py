"""The gateway's use of the answer checks (services/common/answers.py): an answer that breaks the contract is no answer."""

from protos.gateway.v1 import gateway_pb2
from services.common.answers import MAX_ITEMS, problem

__all__ = ["INVALID_PREFIX", "MAX_ITEMS", "check", "problem", "reject"]

INVALID_PREFIX = "invalid response from agency: "


def reject(result: gateway_pb2.AgencyResult, found: str) -> None:
    """Mark the result an agency error and drop every asset it carried."""
    result.ClearField("accounts")
    result.ClearField("vehicles")
    result.ClearField("properties")
    result.status = gateway_pb2.AGENCY_STATUS_ERROR
    result.error_message = INVALID_PREFIX + found


def check(result: gateway_pb2.AgencyResult) -> bool:
    """Validate a freshly filled result; on a violation reject it. True when it may be shown."""
    found = problem(result)
    if found is None:
        return True
    reject(result, found)
    return False
