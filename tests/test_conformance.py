"""The conformance kit: it passes on the three mock kinds, catches every deliberate fault, and reports as a CI expects."""

import json
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from services.agency import faults
from services.conformance.cases import KINDS, load_cases
from tests.support.conformance import (
    chakong,
    conform_args,
    failing,
    make_pki,
    run_kit,
    start_in_test_mode,
)
from tests.support.harness import REPO, ServiceProcess

# Each deliberate fault, the kind it is shown on, and the cases that must catch it.
CAUGHT_BY = {
    "replay_applies_twice": ("bank", ["bank.idempotency.replayed_deduction_applies_once"]),
    "key_reuse_accepted": ("bank", ["bank.idempotency.key_reused_for_another_request"]),
    "refusal_not_stored": ("bank", ["bank.idempotency.refusal_is_replayed"]),
    "invalid_argument_stored": ("bank", ["bank.idempotency.invalid_argument_leaves_the_key_free"]),
    "renew_past_period": ("bank", ["bank.renew.capped_at_the_statutory_period"]),
    "queue_order_ignored": ("vehicle", ["seal.queue.promoted_in_registration_order"]),
    "period_from_registration": ("bank", ["bank.queue.period_starts_when_it_takes_effect"]),
    "available_ignores_frozen": ("bank", ["bank.query.frozen_and_available"]),
    "health_service_name_only": ("vehicle", ["health.whole_server"]),
    "not_found_as_failed_precondition": ("bank", ["bank.renew.unknown_freeze"]),
    "duplicate_hold_accepted": ("realestate", ["seal.duplicate_refused"]),
    "no_shortfall": ("bank", ["bank.freeze.partial_with_shortfall"]),
    "deduct_beyond_freeze": ("bank", ["bank.deduct.beyond_the_freeze"]),
    "transfer_by_any_court": ("realestate", ["realestate.transfer.not_by_a_queued_court"]),
    "any_client_allowed": ("bank", ["identity.other_clients_refused"]),
    "name_mismatch_ignored": ("realestate", ["query.name_mismatch"]),
    "no_item_cap": ("vehicle", ["query.limit.past_the_limit"]),
    "lapse_not_applied": ("realestate", ["seal.lapse"]),
    "freeze_reply_without_id": ("bank", ["bank.freeze.exact"]),
}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def agencies(tmp_path_factory, layout):
    """One conforming mock of each kind in test mode, over mutual TLS."""
    started = {kind: start_in_test_mode(kind, layout, tmp_path_factory.mktemp(kind)) for kind in KINDS}
    yield {kind: process.endpoints["grpc"] for kind, process in started.items()}
    for process in started.values():
        process.stop()


def test_the_cases_load_and_every_kind_has_many():
    cases = load_cases()
    assert len({c.id for c in cases}) == len(cases)
    for kind in KINDS:
        assert len([c for c in cases if kind in c.kinds]) >= 30, kind


@pytest.mark.parametrize("kind", KINDS)
def test_the_kit_passes_on_the_mock(kind, agencies, layout):
    results = run_kit(kind, agencies[kind], layout)
    assert failing(results) == {}
    # Over mutual TLS with an intruder certificate nothing is skipped.
    assert [r.case.id for r in results if r.status == "skipped"] == []
    assert len(results) >= 30


def test_every_deliberate_fault_is_shown_caught():
    assert sorted(CAUGHT_BY) == sorted(faults.FAULTS)
    assert len(CAUGHT_BY) >= 12


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_the_kit_catches_the_fault(fault, tmp_path, layout):
    kind, catching = CAUGHT_BY[fault]
    # Plaintext is quicker to start; the identity fault needs mutual TLS.
    over = layout if fault == "any_client_allowed" else None
    process = start_in_test_mode(kind, over, tmp_path, fault)
    try:
        results = run_kit(kind, process.endpoints["grpc"], over, *catching)
    finally:
        process.stop()
    assert results and all(r.status == "failed" for r in results), [(r.case.id, r.status, r.message) for r in results]


def test_chakong_conform_writes_its_reports_and_says_so_in_its_exit_code(agencies, layout, tmp_path):
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    capabilities = tmp_path / "capabilities.yaml"
    capabilities.write_text("kind: bank\noffers: [query, freeze, release, test_mode, reflection, mtls]\n")
    result = chakong("conform", *conform_args("bank", agencies["bank"], layout), "--capabilities", str(capabilities),
                     "--report-json", str(report), "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bank icbc at" in result.stdout and "CONFORMS" in result.stdout
    document = json.loads(report.read_text())
    assert document["conforms"] is True and document["target"]["transport"] == "mutual TLS"
    statuses = {case["id"]: case["status"] for case in document["cases"]}
    assert statuses["bank.freeze.exact"] == "passed"
    # Not offered: skipped, with the reason.
    assert statuses["bank.deduct.direct"] == "skipped"
    suites = ET.parse(junit).getroot()
    assert sum(int(s.get("tests")) for s in suites) == len(statuses)
    assert sum(int(s.get("skipped")) for s in suites) == list(statuses.values()).count("skipped")


def test_a_failing_agency_exits_1_and_a_known_failing_list_tolerates_it(tmp_path):
    process = start_in_test_mode("bank", None, tmp_path, "deduct_beyond_freeze")
    try:
        address = process.endpoints["grpc"]
        failed = chakong("conform", *conform_args("bank", address, None), "--case", "bank.deduct.*")
        assert failed.returncode == 1
        assert "FAIL  bank.deduct.beyond_the_freeze" in failed.stdout and "DOES NOT CONFORM" in failed.stdout
        assert "contract: A deduction takes at most the frozen amount remaining" in failed.stdout
        known = tmp_path / "known-failing.txt"
        known.write_text("bank.deduct.beyond_* # fixed in release 2.1\n")
        tolerated = chakong("conform", *conform_args("bank", address, None), "--case", "bank.deduct.*",
                            "--known-failing", str(known))
        assert tolerated.returncode == 0, tolerated.stdout
        assert "XFAIL bank.deduct.beyond_the_freeze" in tolerated.stdout
        # A listed case that passes fails the run: the list must be kept honest.
        known.write_text("bank.deduct.direct\n")
        stale = chakong("conform", *conform_args("bank", address, None), "--case", "bank.deduct.direct",
                        "--known-failing", str(known))
        assert stale.returncode == 1 and "XPASS" in stale.stdout
    finally:
        process.stop()


def test_an_unreachable_target_exits_2_with_a_reason():
    result = chakong("conform", "--target", "127.0.0.1:9", "--agency-id", "icbc", "--kind", "bank", "--plaintext",
                     "--connect-timeout", "0.5")
    assert result.returncode == 2 and "cannot connect to 127.0.0.1:9" in result.stderr


NODE_BANK = REPO / "examples" / "node-bank"


def test_the_kit_passes_on_the_node_reference_bank(tmp_path, layout):
    """The contract and the kit are language-neutral: a bank in Node.js with @grpc/grpc-js conforms."""
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "@grpc" / "grpc-js").is_dir():
        message = "node and `npm ci` (scripts/install_ci_tools.sh) are needed for the Node reference bank"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    files = layout.agency("node-bank")
    process = ServiceProcess("examples/node-bank", {
        "AGENCY_ID": "node-bank", "GRPC_ADDRESS": "127.0.0.1:0", "AGENCY_TEST_MODE": "1",
        "TLS_CERT": str(files.cert), "TLS_KEY": str(files.key), "TLS_CA": str(layout.ca.cert),
    }, command=[node, str(NODE_BANK / "server.js")]).start()
    try:
        results = run_kit("bank", process.endpoints["grpc"], layout, agency_id="node-bank")
    finally:
        process.stop()
    assert failing(results) == {}
    assert [r.case.id for r in results if r.status == "skipped"] == []
