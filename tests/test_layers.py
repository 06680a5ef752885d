"""The import layering of services/ (pyproject.toml [tool.importlinter]) holds, and every operation is declared."""

import subprocess
import sys
from pathlib import Path

from protos.gateway.v1 import admin_pb2, control_pb2, control_pb2_grpc, gateway_pb2
from services.gateway.admin.operations import BY_GRPC_METHOD as ADMIN_OPERATIONS
from services.gateway.control.kinds import KINDS
from services.gateway.control.operations import BY_GRPC_METHOD as CONTROL_OPERATIONS
from services.gateway.grpc_api.control import EnforcementControlServicer
from services.gateway.query.operations import BY_GRPC_METHOD as QUERY_OPERATIONS

REPO = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_gateway_method_has_a_declared_operation():
    # A method missing here would need the admin role without anyone deciding so.
    for service, declared in (
        (gateway_pb2.DESCRIPTOR.services_by_name["AssetGateway"], QUERY_OPERATIONS),
        (control_pb2.DESCRIPTOR.services_by_name["EnforcementControl"], CONTROL_OPERATIONS),
        (admin_pb2.DESCRIPTOR.services_by_name["AgencyAdmin"], ADMIN_OPERATIONS),
    ):
        assert sorted(declared) == sorted(method.name for method in service.methods)


def test_every_action_kind_is_declared_once_and_served():
    kinds = [value.number for value in control_pb2.ActionKind.DESCRIPTOR.values if value.number]
    assert sorted(KINDS) == sorted(kinds)
    assert len({kind.prefix for kind in KINDS.values()}) == len(KINDS)
    for kind in KINDS.values():
        method = control_pb2.DESCRIPTOR.services_by_name["EnforcementControl"].methods_by_name[kind.grpc_method]
        assert method.input_type is kind.request_type.DESCRIPTOR
        # The servicer's method is the kind's, not the generated UNIMPLEMENTED stub.
        served = getattr(EnforcementControlServicer, kind.grpc_method)
        assert served is not getattr(control_pb2_grpc.EnforcementControlServicer, kind.grpc_method)
