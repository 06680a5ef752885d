"""Monitoring as an operator sees it: a real Prometheus and Alertmanager (Debian's packages) with the shipped
rules and routing, scraping a real gateway and agencies, paging a webhook.

One stack for the module: three agencies, a gateway (agencies probed every
second, ejected after 3 failures for 1 s), Prometheus scraping every second
and evaluating alerts.yml and slo.yml, Alertmanager with
ops/alertmanager/alertmanager.yml whose receivers point at a webhook here.
"""

import json
import time
import urllib.parse
import urllib.request

import pytest

from tests.support.agencies import AGENCIES, MODULES, VEHICLES, Agency, agency_env, start_all
from tests.support.auth import auth_headers
from tests.support.control import case_json, debtors, new_case_number, register_body, subject_json
from tests.support.gateway import write_registry
from tests.support.harness import ServiceProcess
from tests.support.monitoring import (
    Webhook,
    get_json,
    query,
    start_alertmanager,
    start_prometheus,
    tool,
    value,
    wait_for,
)

SEAL_SUCCEEDED = 'chakong_gateway_actions_total{kind="seal",outcome="succeeded",court="340100"}'
# Ejection, the 1m `for:`, scrapes and evaluations each second, group_wait 10 s.
PAGE_WITHIN_S = 150
RECOVERY_WITHIN_S = 120


def post(base: str, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", **auth_headers()},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tool("prometheus")
    tool("prometheus-alertmanager")
    directory = tmp_path_factory.mktemp("monitoring")
    processes: list = []
    closers: list = []

    def start(module: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(module, {"DATA_DIR": str(directory), **env})
        processes.append(process)
        return process.start()

    try:
        specs = [(i, kind, agency_env(i, kind, profile)) for i, kind, profile in AGENCIES]
        started = start_all(start, specs)
        agencies = {i: (kind, env, p) for (i, kind, env), p in zip(specs, started)}
        registry = write_registry(directory, [Agency(i, kind, p.endpoints["grpc"]) for i, (kind, _, p) in agencies.items()])
        gateway = start(
            "services.gateway", AGENCY_REGISTRY=str(registry), GATEWAY_GRPC_ADDRESS="127.0.0.1:0",
            GATEWAY_HTTP_ADDRESS="127.0.0.1:0", INSECURE_PLAINTEXT="1", AGENCY_IDLE_PROBE_SECONDS="1",
            EJECT_AFTER_FAILURES="3", EJECT_COOLDOWN_SECONDS="1", EJECT_COOLDOWN_MAX_SECONDS="2",
        )
        webhook = Webhook()
        closers.append(webhook.close)
        alertmanager = start_alertmanager(directory, webhook)
        closers.append(alertmanager.close)
        prometheus = start_prometheus(
            directory, gateway.endpoints["http"], {i: p.endpoints["metrics"] for i, (_, _, p) in agencies.items()},
            alertmanager.url,
        )
        closers.append(prometheus.close)
        yield {
            "start": start, "agencies": agencies, "gateway": f"http://{gateway.endpoints['http']}",
            "prometheus": prometheus, "alertmanager": alertmanager, "webhook": webhook, "directory": directory,
        }
    finally:
        for close in reversed(closers):
            close()
        for process in reversed(processes):
            process.stop()


def seal_debtor():
    return next(d for d in debtors() if d.plate)


def test_one_seal_is_an_increase_of_one(stack):
    """The first action of its kind shows: its series existed at 0 before it, in Prometheus too."""
    prometheus, base = stack["prometheus"], stack["gateway"]
    debtor, case_number = seal_debtor(), new_case_number()
    status, body = post(base, "/v1/cases", register_body(case_number, debtor))
    assert status in (200, 201), body
    # Registering the court's first case created its series at zero; Prometheus has scraped them.
    wait_for(lambda: value(prometheus, SEAL_SUCCEEDED) == 0.0, 30, what="the court's seal series at 0")

    status, body = post(base, "/v1/seals", {"case": case_json(case_number), "agency_id": VEHICLES,
                                            "subject": subject_json(debtor.subject), "asset_id": debtor.plate})
    assert status == 200, body
    wait_for(lambda: value(prometheus, SEAL_SUCCEEDED) == 1.0, 30, what="the seal scraped")

    # At the last scrape, so nothing is extrapolated past it.
    at = value(prometheus, f"timestamp({SEAL_SUCCEEDED})")
    assert value(prometheus, 'sum(increase(chakong_gateway_actions_total{kind="seal"}[5m]))', at) == 1.0
    assert value(prometheus, f"increase({SEAL_SUCCEEDED}[5m])", at) == 1.0
    # Every other kind and outcome of the court is there, at 0.
    kinds = query(prometheus, 'chakong_gateway_actions_total{court="340100"} == 0')
    assert len(kinds) == 8 * 9 - 1


def test_query_durations_carry_the_request_id_as_an_exemplar(stack):
    prometheus, base = stack["prometheus"], stack["gateway"]
    subject = seal_debtor().subject
    case_number = new_case_number()
    assert post(base, "/v1/cases", register_body(case_number, seal_debtor()))[0] in (200, 201)
    status, body = post(base, "/v1/queries", {"case": case_json(case_number), "subject": subject_json(subject)})
    assert status == 200, body
    request_id = body["request_id"]

    def exemplar_ids():
        now = time.time()
        params = urllib.parse.urlencode({"query": "chakong_gateway_query_duration_seconds_bucket", "start": now - 120,
                                         "end": now})
        answer = get_json(f"{prometheus.url}/api/v1/query_exemplars?{params}")
        return {e["labels"].get("request_id") for series in answer["data"] for e in series["exemplars"]}

    assert request_id in wait_for(lambda: request_id in exemplar_ids() and exemplar_ids(), 30, what="the exemplar")
    # Never a label: no series names the request.
    assert query(prometheus, f'{{request_id="{request_id}"}}') == []


# The one long test: an alert's 1m `for:`, then Alertmanager's 1m group_interval for the resolution.
@pytest.mark.timeout(PAGE_WITHIN_S + RECOVERY_WITHIN_S + 60)
def test_an_agency_down_pages_once_and_everything_resolves_after_recovery(stack):
    prometheus, webhook, base = stack["prometheus"], stack["webhook"], stack["gateway"]
    kind, env, vehicle = stack["agencies"][VEHICLES]
    grpc_address, metrics_address = vehicle.endpoints["grpc"], vehicle.endpoints["metrics"]
    assert not webhook.posts("/page")

    vehicle.stop()
    down = f'min(chakong_gateway_agency_up{{agency="{VEHICLES}"}})'
    wait_for(lambda: value(prometheus, down) == 0.0, 30, what="the agency ejected")
    # Queries meanwhile: answered without it at once; the skipped calls are counted and are errors.
    debtor, case_number = seal_debtor(), new_case_number()
    assert post(base, "/v1/cases", register_body(case_number, debtor))[0] in (200, 201)
    for _ in range(3):
        status, body = post(base, "/v1/queries", {"case": case_json(case_number), "subject": subject_json(debtor.subject)})
        assert status == 200 and body["complete"] is False, body
    ejected = f'sum(chakong_gateway_agency_calls_total{{agency="{VEHICLES}",outcome="EJECTED"}})'
    wait_for(lambda: (value(prometheus, ejected) or 0) >= 3, 30, what="EJECTED calls")
    error_ratio = f'chakong:agency_error_ratio:rate5m{{agency="{VEHICLES}"}}'
    wait_for(lambda: (value(prometheus, error_ratio) or 0) > 0, 30, what="the skipped calls as errors")

    firing = wait_for(lambda: [b for _, b in webhook.posts("/page") if b["status"] == "firing"], PAGE_WITHIN_S,
                      what="the page")
    page = firing[0]
    assert [(a["labels"]["alertname"], a["labels"]["agency"], a["labels"]["severity"]) for a in page["alerts"]] == [
        ("ChakongAgencyDown", VEHICLES, "critical")
    ]
    annotations = page["alerts"][0]["annotations"]
    assert annotations["runbook_url"] == "ops/runbooks/ChakongAgencyDown.md"
    assert f"var-agency={VEHICLES}" in annotations["dashboard_url"]

    restarted = stack["start"](MODULES[kind], **{**env, "GRPC_ADDRESS": grpc_address, "METRICS_ADDRESS": metrics_address})
    stack["agencies"][VEHICLES] = (kind, env, restarted)
    recovered = time.monotonic()
    # Readmitted by the gateway's probe; traffic goes on.
    wait_for(lambda: value(prometheus, down) == 1.0, 30, what="the agency readmitted")
    status, body = post(base, "/v1/queries", {"case": case_json(case_number), "subject": subject_json(debtor.subject)})
    assert status == 200 and body["complete"] is True, body
    resolved = wait_for(lambda: [at for at, b in webhook.posts("/page") if b["status"] == "resolved"],
                        RECOVERY_WITHIN_S, what="the page resolved")
    assert resolved[0] - recovered < RECOVERY_WITHIN_S
    # Nothing else firing in Prometheus, and no second page for the one outage.
    def firing_alerts():
        return [(a["labels"]["alertname"], a["state"]) for a in
                get_json(f"{prometheus.url}/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]

    try:
        wait_for(lambda: firing_alerts() == [], max(1.0, RECOVERY_WITHIN_S - (time.monotonic() - recovered)),
                 what="every alert resolved")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: still firing {firing_alerts()}") from None
    assert len([b for _, b in webhook.posts("/page") if b["status"] == "firing"]) == 1
