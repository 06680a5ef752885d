"""Agency replicas, on both ledger backends: one bank served by two processes on one database, one registry
entry with both endpoints. Queries go on when one endpoint is killed (it alone is ejected); a control action
whose reply is lost at one endpoint is retried with the same key at the other and takes effect once."""

import signal

import pytest

from tests.support.agencies import BANK, Agency, agency_env
from tests.support.control import (
    FAST,
    bank_deductions,
    bank_freezes,
    case_json,
    control_stack,
    debtors,
    direct_deduct_body,
    freeze_body,
    new_case_number,
    register_body,
    subject_json,
)
from tests.support.faultproxy import FaultProxy
from tests.support.gateway import sample
from tests.support.harness import ServiceProcess

SUCCEEDED = "ACTION_STATE_SUCCEEDED"


@pytest.fixture
def replicas(tmp_path):
    """Two processes of the bank icbc on one database (started one after the other: the first seeds it)."""
    started = []
    for _ in range(2):
        started.append(ServiceProcess("services.bank", {**agency_env(BANK, "bank", "bank"),
                                                        "DATA_DIR": str(tmp_path / "bank")}).start())
    yield started
    for process in started:
        process.stop()


def debtor_for(ledger_url: str, n: int):
    return debtors()[2 * n + (0 if ledger_url.startswith("sqlite") else 1)]


async def test_queries_go_on_when_one_endpoint_is_killed(tmp_path, replicas, ledger_url):
    first, second = replicas
    bank = Agency(BANK, "bank", first.endpoints["grpc"], process=first,
                  endpoints=(first.endpoints["grpc"], second.endpoints["grpc"]))
    debtor = debtor_for(ledger_url, 10)
    case_number = new_case_number()
    async with control_stack(tmp_path, [bank], ledger_url, hold_sync_seconds=0.0, **FAST) as stack:
        assert (await stack.http.post("/v1/cases", register_body(case_number, debtor))).status == 201
        body = {"case": case_json(case_number), "subject": subject_json(debtor.subject)}
        ejections = sample("chakong_gateway_agency_ejections_total", agency=BANK)

        second.signal(signal.SIGKILL)
        second.proc.wait(10)
        for _ in range(12):
            reply = await stack.http.post("/v1/queries", body)
            assert reply.status == 200, reply.body
            (result,) = reply.body["results"]
            assert result["status"] == "AGENCY_STATUS_OK", result
        # The dead endpoint is ejected on its own; the agency stays up.
        assert sample("chakong_gateway_agency_ejections_total", agency=BANK) >= ejections + 1
        assert sample("chakong_gateway_agency_up", agency=BANK) == 1
        listed = {a["id"]: a for a in (await stack.http.get("/v1/agencies")).body["agencies"]}
        assert listed[BANK]["health"] == "up"

        # A control action goes to the live endpoint and takes effect once.
        freeze = await stack.http.post("/v1/freezes", freeze_body(case_number, debtor, 3_000), key="replica-f1")
        assert freeze.status == 200 and freeze.body["state"] == SUCCEEDED, freeze.body
        assert len(bank_freezes(bank, case_number)) == 1


async def test_a_reply_lost_at_one_endpoint_is_retried_at_the_other_with_the_same_key(tmp_path, replicas,
                                                                                      ledger_url):
    first, second = replicas
    proxy = await FaultProxy(first.endpoints["grpc"]).start()
    bank = Agency(BANK, "bank", proxy.address, process=first, endpoints=(proxy.address, second.endpoints["grpc"]))
    debtor = debtor_for(ledger_url, 11)
    case_number = new_case_number()
    try:
        async with control_stack(tmp_path, [bank], ledger_url, hold_sync_seconds=0.0, **FAST) as stack:
            assert (await stack.http.post("/v1/cases", register_body(case_number, debtor))).status == 201
            # The first attempt goes to the first endpoint: the bank acts, its answer is lost.
            dropped = proxy.drop_next_response()
            reply = await stack.http.post("/v1/deductions", direct_deduct_body(case_number, debtor, 2_100),
                                          key="replica-d1")
            assert dropped.is_set(), "the proxy saw no request to drop the answer to"
            assert reply.status == 200 and reply.body["state"] == SUCCEEDED, reply.body
            assert reply.body["attempts"] == 2
    finally:
        await proxy.close()
    # Each endpoint saw the agency request once, under the same key; the money moved once.
    agency_key = f"gw.{reply.body['action_id']}"
    assert [sum(agency_key in line for line in p.output) for p in (first, second)] == [1, 1]
    assert [d["amount_fen"] for d in bank_deductions(bank, case_number)] == [2_100]
