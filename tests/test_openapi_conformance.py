"""schemathesis against a live gateway: every answer is one the OpenAPI document states, and data the
document calls valid is accepted (issue 10, finding 5).

A gateway process in front of the real mock agencies, asked with an
executor's token and an admin's, a bounded number of generated requests per
operation, positive (valid by the document) and negative.
"""


import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.auth import COURT, EXECUTOR, issue_token
from tests.support.gateway_process import showcase_gateway
from tests.support.openapi import FORMATS, check, register_formats
from tests.support.tls import GatewayEndpoints

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance,
          positive_data_acceptance]
EXAMPLES = 8
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def gateway(healthy, tmp_path_factory, token_keys):
    with showcase_gateway(tmp_path_factory.mktemp("openapi-gateway"), healthy) as service:
        yield service


@pytest.fixture(scope="module")
def api(gateway):
    register_formats()
    base_url = GatewayEndpoints.of(gateway).base_url
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    schema.config.base_url = base_url
    return schema


TOKENS = {
    "executor": lambda: issue_token(EXECUTOR, COURT, roles=("executor",)),
    "admin": lambda: issue_token("A0001", COURT, roles=("executor", "admin")),
}


@settings(max_examples=50, deadline=None)
@given(values=st.fixed_dictionaries(FORMATS))
def test_the_document_formats_generate_valid_identifiers(values):
    for name, value in values.items():
        assert check(value, name) == value


@pytest.mark.timeout(240)
@pytest.mark.parametrize("who", sorted(TOKENS))
def test_every_operation_conforms_to_the_document(api, who):
    headers = {"Authorization": f"Bearer {TOKENS[who]()}"}
    session = requests.Session()
    seen: dict[str, set[int]] = {}
    failures = []
    for result in api.get_all_operations():
        operation = result.ok()
        # An operation with no parameters and no body has no negative data.
        modes = [GenerationMode.POSITIVE]
        if list(operation.body) or list(operation.iter_parameters()):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case):
                if mode is GenerationMode.POSITIVE and case.media_type == XLSX:
                    # A workbook is no string a generator makes; tests/test_batches.py uploads real ones.
                    return
                response = case.call(session=session, headers=headers, timeout=10)
                seen.setdefault(f"{operation.label} {mode}", set()).add(response.status_code)
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                run()
            except Exception as exc:  # noqa: BLE001: every operation is tried; all failures reported together
                failures.append(f"{operation.label} ({mode}): {exc}")
    print(who, {label: sorted(statuses) for label, statuses in seen.items()})
    assert not failures, "\n\n".join(failures)
    # Generated requests reached past the door's refusals somewhere.
    assert any(status < 300 for statuses in seen.values() for status in statuses), seen
