"""Operations: Prometheus rules and SLOs and their unit tests, Alertmanager routing, runbooks, the Grafana dashboard,
the compose layering, the README's metrics table, and promtool and bounded series on every service's /metrics."""

import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from stdnum.cn import ric, uscc

from protos.common.v1 import common_pb2
from protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services import datagen
from services.gateway.agencies.methods import QUERY
from services.gateway.agencies.metrics import HEDGE_EVENTS
from services.gateway.control.metrics import HOLD_EVENT_KINDS
from tests.support.auth import auth_headers, issue_token, register_case_body
from tests.support.harness import REPO

PROMETHEUS = REPO / "ops" / "prometheus"
ALERTMANAGER = REPO / "ops" / "alertmanager" / "alertmanager.yml"
RUNBOOKS = REPO / "ops" / "runbooks"
GRAFANA = REPO / "ops" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "chakong.json"
RULE_FILES = ("alerts.yml", "slo.yml")
RULE_TESTS = ("alerts_test.yml", "slo_test.yml")

# The metric names services expose: alerts and the dashboard may use only
# these (and the recording rules built on them). Histograms also expose
# _bucket, _sum and _count.
CONTRACT = {
    # The gateway, on its HTTP port.
    "chakong_gateway_agency_call_duration_seconds": "histogram",
    "chakong_gateway_agency_calls_total": "counter",
    "chakong_gateway_agency_calls_in_flight": "gauge",
    "chakong_gateway_agency_up": "gauge",
    "chakong_gateway_agency_ejections_total": "counter",
    "chakong_gateway_agency_hedges_total": "counter",
    "chakong_gateway_tasks": "gauge",
    "chakong_gateway_query_duration_seconds": "histogram",
    "chakong_gateway_queries_total": "counter",
    "chakong_gateway_actions_total": "counter",
    "chakong_gateway_frozen_fen_total": "counter",
    "chakong_gateway_deducted_fen_total": "counter",
    "chakong_gateway_actions_pending": "gauge",
    "chakong_gateway_hold_events_total": "counter",
    "chakong_gateway_hold_feed_lag_seconds": "gauge",
    "chakong_gateway_hold_feed_synced_timestamp_seconds": "gauge",
    "chakong_gateway_hold_repairs_total": "counter",
    "chakong_gateway_holds": "gauge",
    "chakong_gateway_http_requests_total": "counter",
    "chakong_gateway_http_request_duration_seconds": "histogram",
    "chakong_gateway_store_up": "gauge",
    "chakong_gateway_store_duration_seconds": "histogram",
    "chakong_audit_records_total": "counter",
    "chakong_audit_write_failures_total": "counter",
    "chakong_rate_limited_total": "counter",
    "chakong_rate_limit_fallback_total": "counter",
    "chakong_gateway_agency_quota_queue_depth": "gauge",
    "chakong_gateway_agency_quota_wait_seconds": "histogram",
    "chakong_gateway_batch_items": "gauge",
    "chakong_gateway_batch_answers_total": "counter",
    "chakong_gateway_batch_items_in_flight": "gauge",
    "chakong_gateway_late_calls_in_flight": "gauge",
    "chakong_gateway_late_calls_total": "counter",
    # Every service.
    "chakong_build_info": "gauge",
    "chakong_tls_certificate_expiry_timestamp_seconds": "gauge",
    # Every gRPC server.
    "grpc_server_handled_total": "counter",
    "grpc_server_handling_seconds": "histogram",
    "grpc_server_in_flight_requests": "gauge",
    "grpc_server_peak_in_flight_requests": "gauge",
    # Agencies.
    "chakong_agency_records": "gauge",
    # Every gRPC server with mutual TLS (the security issue).
    "chakong_grpc_peer_refused_total": "counter",
}
# Added by Prometheus to every target.
SCRAPE_METRICS = {"up"}
# What the gateway serves (without TLS: no certificate series, but the family).
GATEWAY_SERVES = (
    "chakong_gateway_http_requests_total",
    "chakong_gateway_http_request_duration_seconds",
    "chakong_gateway_store_up",
    "chakong_gateway_store_duration_seconds",
    "chakong_audit_records_total",
    "chakong_rate_limited_total",
    "chakong_rate_limit_fallback_total",
    "chakong_build_info",
    "chakong_gateway_agency_call_duration_seconds",
    "chakong_gateway_agency_calls_total",
    "chakong_gateway_agency_calls_in_flight",
    "chakong_gateway_query_duration_seconds",
    "chakong_gateway_queries_total",
    "chakong_gateway_actions_total",
    "chakong_gateway_frozen_fen_total",
    "chakong_gateway_deducted_fen_total",
    "chakong_gateway_actions_pending",
    "chakong_gateway_agency_up",
    "chakong_gateway_agency_ejections_total",
    "chakong_gateway_agency_hedges_total",
    "chakong_gateway_tasks",
    "chakong_gateway_hold_events_total",
    "chakong_gateway_hold_feed_lag_seconds",
    "chakong_gateway_hold_feed_synced_timestamp_seconds",
    "chakong_gateway_hold_repairs_total",
    "chakong_gateway_holds",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
    "grpc_server_in_flight_requests",
)

ALERTS = (
    "ChakongAgencyDown",
    "ChakongAgencyErrorRatio",
    "ChakongAgencyLatencyNearDeadline",
    "ChakongPartialQueries",
    "ChakongAuditWriteFailures",
    "ChakongActionsStuckPending",
    "ChakongTargetDown",
    "ChakongQueryLatencyHigh",
    "ChakongStoreDown",
    "ChakongCertificateExpiringSoon",
    "ChakongQueryAvailabilityBudgetBurn",
    "ChakongQueryLatencyBudgetBurn",
    "ChakongControlBudgetBurn",
)


def exposed_names() -> set[str]:
    names = set(SCRAPE_METRICS)
    for name, kind in CONTRACT.items():
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed: run scripts/install_ci_tools.sh")
        pytest.skip("promtool is not installed (scripts/install_ci_tools.sh installs it)")
    return path


def run(*args: str, cwd: Path = REPO, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=30)


# --- PromQL, read just far enough to name the metrics it selects -------------

_PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (Grafana variables allowed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\w+", " ", expr)
    # Numbers and durations (offset 5m, 1e3).
    expr = re.sub(r"(?<![\w:])[0-9.]+(?:e[+-]?[0-9]+)?(?:(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*)?", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group()
        if word in _PROMQL_KEYWORDS or expr[match.end() :].lstrip().startswith("("):
            continue  # a keyword, or a function or aggregation being called
        names.add(word)
    return names


def test_metric_names_reads_promql():
    expr = (
        'sum by (agency, le) (rate(chakong_gateway_agency_call_duration_seconds_bucket{agency=~"$agency",'
        ' method!="x_total"}[$__rate_interval])) / on (agency) group_left chakong:agency_calls:rate5m > bool 0.5'
        " or up unless absent(grpc_server_handled_total offset 1h30m) * 1e3"
    )
    assert metric_names(expr) == {
        "chakong_gateway_agency_call_duration_seconds_bucket",
        "chakong:agency_calls:rate5m",
        "up",
        "grpc_server_handled_total",
    }


# --- Rule files, read as text (PyYAML is not a dependency) ------------------


def rule_exprs(text: str) -> list[str]:
    """Every `expr:` of a rule file, block scalars included."""
    lines = text.splitlines()
    exprs = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not match:
            continue
        indent, rest = len(match.group(1)), match.group(2)
        if rest and rest[0] not in "|>":
            exprs.append(rest)
            continue
        block = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following)
        exprs.append("\n".join(block))
    return exprs


def rules_text() -> str:
    return "\n".join((PROMETHEUS / name).read_text() for name in RULE_FILES)


def rules() -> list[dict]:
    """Every rule of every rule file, parsed."""
    return [rule for name in RULE_FILES for group in yaml.safe_load((PROMETHEUS / name).read_text())["groups"]
            for rule in group["rules"]]


def recorded_names() -> set[str]:
    return set(re.findall(r"^\s*- record:\s*(\S+)\s*$", rules_text(), re.M))


def alert_blocks() -> list[str]:
    return [block for name in RULE_FILES
            for block in re.split(r"\n(?=[ ]*- (?:alert|record):)", (PROMETHEUS / name).read_text())[1:]]


def test_prometheus_config_is_valid(promtool, tmp_path):
    # Laid out as docker-compose mounts them: rule_files resolves beside the config.
    for name in ("prometheus.yml", *RULE_FILES):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    result = run(promtool, "check", "config", "--lint=all", "--lint-fatal", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout
    # Prometheus sends to the Alertmanager the compose stack runs.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    # Agency targets carry the agency label that inhibition matches on.
    agencies = next(job for job in config["scrape_configs"] if job["job_name"] == "agencies")
    assert all(target["labels"]["agency"] for target in agencies["static_configs"])


def test_rules_are_valid(promtool):
    result = run(promtool, "check", "rules", "--lint=all", "--lint-fatal", *(f"ops/prometheus/{n}" for n in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("tests", RULE_TESTS)
def test_rule_unit_tests_pass(promtool, tests):
    result = run(promtool, "test", "rules", tests, cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet():
    text = "\n".join((PROMETHEUS / name).read_text() for name in RULE_TESTS)
    quiet = set(re.findall(r"alertname: (\w+)\n\s+eval_time: \S+\n\s+exp_alerts: \[\]", text))
    firing = set(re.findall(r"alertname: (\w+)\n\s+eval_time: \S+\n\s+exp_alerts:\n", text))
    defined = {rule["alert"] for rule in rules() if "alert" in rule}
    assert defined == set(ALERTS)
    assert firing == defined, f"no firing case for {defined - firing}"
    assert quiet == defined, f"no quiet case for {defined - quiet}"


def test_every_alert_has_severity_annotations_a_runbook_and_a_dashboard_link():
    alerts = [rule for rule in rules() if "alert" in rule]
    assert alerts
    uid = json.loads(DASHBOARD.read_text(encoding="utf-8"))["uid"]
    for rule in alerts:
        name, annotations = rule["alert"], rule["annotations"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"] == f"ops/runbooks/{name}.md", name
        assert f"/d/{uid}" in annotations["dashboard_url"], name
        runbook = (REPO / annotations["runbook_url"]).read_text(encoding="utf-8")
        assert runbook.startswith(f"# {name}"), name
        for section in ("## What it means", "## First checks", "## Mitigation"):
            assert section in runbook, f"{name}: {section}"
    assert {path.stem for path in RUNBOOKS.glob("Chakong*.md")} == {rule["alert"] for rule in alerts}


def test_rules_use_only_contract_metrics():
    text = rules_text()
    exprs = rule_exprs(text)
    assert len(exprs) == len(alert_blocks())
    allowed = exposed_names() | recorded_names()
    for expr in exprs:
        assert metric_names(expr) <= allowed, f"unknown metric in {expr!r}: {metric_names(expr) - allowed}"


# --- The Grafana dashboard ------------------------------------------------------


def dashboard_panels() -> list[dict]:
    panels = []
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel.get("targets", [])]


def test_dashboard_is_provisioned_with_its_datasource():
    datasource = (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    provider = (GRAFANA / "provisioning" / "dashboards" / "chakong.yml").read_text()
    uid = re.search(r"^\s+uid: (\S+)$", datasource, re.M).group(1)
    assert re.search(r"^\s+url: http://prometheus:9090$", datasource, re.M)
    dashboard_dir = re.search(r"^\s+path: (\S+)$", provider, re.M).group(1)

    compose = (REPO / "docker-compose.yml").read_text()
    mounts = dict(
        (target, source) for source, target in re.findall(r"^\s+- \./(ops/[^:\s]+):([^:\s]+):ro$", compose, re.M)
    )
    assert mounts["/etc/grafana/provisioning"] == "ops/grafana/provisioning"
    assert mounts[dashboard_dir] == "ops/grafana/dashboards"
    assert mounts["/etc/prometheus/alerts.yml"] == "ops/prometheus/alerts.yml"
    for source in mounts.values():
        assert (REPO / source).exists(), source
    assert '"127.0.0.1:${GRAFANA_PORT}:3000"' in compose
    assert re.search(r"^GRAFANA_PORT=\d+$", (REPO / ".env").read_text(), re.M)

    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        x, w = panel["gridPos"]["x"], panel["gridPos"]["w"]
        assert 0 <= x and x + w <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid, panel["title"]


def test_dashboard_uses_only_contract_metrics():
    allowed = exposed_names() | recorded_names()
    used = set()
    for expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, expr
        assert names <= allowed, f"unknown metric in {expr!r}: {names - allowed}"
        used |= names
    for variable in json.loads(DASHBOARD.read_text(encoding="utf-8"))["templating"]["list"]:
        metric = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]).group(1)
        assert metric in allowed, variable["query"]
    # The issue's views: per-agency latency, errors and state, queries and
    # completeness, money, actions and pending ones.
    for name in (
        "chakong:agency_call_duration_seconds:p99_rate5m",
        "chakong:agency_call_duration_seconds:p50_rate5m",
        "chakong:agency_error_ratio:rate5m",
        "chakong_gateway_agency_calls_total",
        "chakong_gateway_agency_up",
        "chakong_gateway_queries_total",
        "chakong:queries_partial_ratio:rate5m",
        "chakong_gateway_frozen_fen_total",
        "chakong_gateway_deducted_fen_total",
        "chakong_gateway_actions_total",
        "chakong_gateway_actions_pending",
        # Part 2: rate limits, HTTP, stores, certificates, builds, SLOs.
        "chakong_rate_limited_total",
        "chakong_gateway_http_requests_total",
        "chakong_gateway_store_up",
        "chakong_tls_certificate_expiry_timestamp_seconds",
        "chakong_build_info",
        "chakong:slo_errors:ratio_rate1h",
    ):
        assert name in used, name
    # The per-court views: queries, the complete ratio, money, denials.
    per_court = [expr for expr in dashboard_exprs() if 'court=~"$court"' in expr and "by (court" in expr]
    for needle in ('result=~"complete|partial"', 'result="complete"', "frozen_fen_total", "deducted_fen_total",
                   'result=~"unauthenticated|denied|rate_limited|unknown_case"'):
        assert any(needle in expr for expr in per_court), needle


def test_dashboard_shows_money_in_yuan():
    money = [
        (panel, target["expr"])
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
        if "_fen_total" in target["expr"]
    ]
    assert money
    for panel, expr in money:
        assert re.search(r"/ 100$", expr), expr
        assert panel["fieldConfig"]["defaults"]["unit"] == "prefix:¥", panel["title"]


def test_dashboard_promql_parses(promtool, tmp_path):
    # promtool parses rules; each panel query becomes one, with Grafana's
    # variables replaced by what they stand for. JSON is valid YAML.
    substitutes = {"$__rate_interval": "1m", "$__range": "1h", "$agency": ".*", "$court": ".*"}
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        for variable, value in substitutes.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:panel_query_{i}:check", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- promtool check metrics on every running service ------------------------

SEED = "42"
SUBJECTS = "200"
AGENCIES = (("icbc", "bank", "services.bank"), ("hefei-vmo", "vehicle", "services.vehicle"), ("hefei-rer", "realestate", "services.realestate"))
CASE = common_pb2.CaseRef(
    case_number="(2024)皖01执321号", court_code="340100", executor_id="E0001", document_number="(2024)皖01执保54号"
)
GRPC_CODES = {code.name for code in grpc.StatusCode}
kind_of = {agency_id: kind for agency_id, kind, _ in AGENCIES}
DOOR = {"unauthenticated", "denied", "rate_limited", "unknown_case", "unavailable"}
# Every label a chakong metric may carry, and where the values are a known
# set, that set: nothing about a subject, case or account can get in. Court
# codes are the one identifier allowed, bounded by the courts of registered
# cases (here the one case's court).
LABEL_VALUES = {
    "agency": {agency_id for agency_id, _, _ in AGENCIES},
    "agency_id": {agency_id for agency_id, _, _ in AGENCIES},
    "priority": {"interactive", "batch"},
    "api": {"grpc", "grpc_stream", "http", "http_stream"},
    "result": {"complete", "partial", "rejected"} | DOOR,
    "outcome": GRPC_CODES | {"TIMEOUT", "EJECTED", "INVALID_RESPONSE", "succeeded", "refused", "rejected", "pending",
                             "allowed", "denied", "answered", "expired"} | DOOR,
    "court": {CASE.court_code, "other", "unknown"},
    "grpc_code": GRPC_CODES,
    # Agency and gRPC methods, HTTP methods.
    "method": re.compile(r"[A-Z][A-Za-z]*|other"),
    "grpc_method": re.compile(r"[A-Z][A-Za-z]*|unknown"),
    "grpc_service": re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z]*|unknown"),
    "route": re.compile(r"(/[a-z0-9_.{}-]+)+|unmatched"),
    # HTTP status classes; agency answer statuses (batch answers).
    "status": {"1xx", "2xx", "3xx", "4xx", "5xx", "OK", "TIMEOUT", "UNAVAILABLE", "ERROR"},
    "store": {"ledger", "audit"},
    "operation": {"read", "write", "append", "ping"},
    "certificate": {"ca", "gateway", "agency", "other"},
    "kind": re.compile(r"[a-z][a-z_]*"),
    "reason": re.compile(r"[a-z][a-z_]*"),
    "scope": {"executor", "court"},
    "limit": {"query", "control"},
    "event": set(HOLD_EVENT_KINDS) | set(HEDGE_EVENTS),
    # Hold states; batch item states.
    "state": {name.removeprefix("HOLD_STATE_") for name in common_pb2.HoldState.keys()} - {"UNSPECIFIED"}
    | {"PENDING", "DONE", "CANCELLED"},
    "le": re.compile(r"[0-9.]+|\+Inf"),
    "revision": re.compile(r"[0-9A-Za-z._-]{1,40}"),
    "python": re.compile(r"\d+\.\d+\.\d+\w*"),
    # prometheus_client's own process and python_* metrics, and chakong_build_info.
    "generation": re.compile(r"[0-2]"),
    "implementation": re.compile(r"\w+"),
    "major": re.compile(r"\d+"),
    "minor": re.compile(r"\d+"),
    "patchlevel": re.compile(r"\d+"),
    "version": re.compile(r"[\w.+-]+"),
}
SENSITIVE = re.compile(r"执|号|皖[A-Z]|\d{12,}")


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        return response.read().decode("utf-8")


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", **auth_headers()},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def samples(text: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def sample_value(text: str, name: str, **labels: str) -> float:
    return sum(s.value for s in samples(text) if s.name == name and labels.items() <= s.labels.items())


@pytest.fixture
def running_services(start_service, tmp_path):
    """One bank, one vehicle and one real-estate agency, and a gateway over them, after one query each way."""
    env = {"GRPC_ADDRESS": "127.0.0.1:0", "METRICS_ADDRESS": "127.0.0.1:0", "SEED": SEED, "SUBJECTS": SUBJECTS}
    with ThreadPoolExecutor(len(AGENCIES)) as pool:
        agencies = list(pool.map(lambda a: start_service(a[2], AGENCY_ID=a[0], **env), AGENCIES))
    registry = tmp_path / "agencies.toml"
    registry.write_text(
        "\n".join(
            f'[[agency]]\nid = "{agency_id}"\nkind = "{kind}"\nname = "{agency_id} 测试"\n'
            f'address = "{process.endpoints["grpc"]}"\ntimeout_ms = 1500\n'
            for (agency_id, kind, _), process in zip(AGENCIES, agencies)
        ),
        encoding="utf-8",
    )
    gateway = start_service(
        "services.gateway",
        AGENCY_REGISTRY=str(registry),
        GATEWAY_GRPC_ADDRESS="127.0.0.1:0",
        GATEWAY_HTTP_ADDRESS="127.0.0.1:0",
    )

    subject = datagen.showcase(datagen.subjects(int(SEED), int(SUBJECTS)), 1)[0]
    case = {"case_number": CASE.case_number, "court_code": CASE.court_code, "executor_id": CASE.executor_id,
            "document_number": CASE.document_number}
    debtors = [{"type": subject.subject_type, "id_number": subject.id_number, "name": subject.name}]
    post_json(f"http://{gateway.endpoints['http']}/v1/cases", register_case_body(case, debtors))
    body = post_json(
        f"http://{gateway.endpoints['http']}/v1/queries",
        {
            "case": {
                "caseNumber": CASE.case_number,
                "courtCode": CASE.court_code,
                "executorId": CASE.executor_id,
                "documentNumber": CASE.document_number,
            },
            "subject": {
                "type": common_pb2.SubjectType.Name(subject.subject_type),
                "idNumber": subject.id_number,
                "name": subject.name,
            },
        },
    )
    assert body["complete"] is True, body
    with grpc.insecure_channel(gateway.endpoints["grpc"]) as channel:
        request = gateway_pb2.AssetQueryRequest(
            case=CASE,
            subject=common_pb2.Subject(type=subject.subject_type, id_number=subject.id_number, name=subject.name),
        )
        answer = gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(
            request, timeout=10, metadata=[("authorization", f"Bearer {issue_token()}")]
        )
        assert answer.complete

    outputs = {"gateway": scrape(gateway.endpoints["http"])}
    for (agency_id, _, _), process in zip(AGENCIES, agencies):
        outputs[agency_id] = scrape(process.endpoints["metrics"])
    return outputs, subject


def test_every_service_passes_promtool_check_metrics(promtool, running_services):
    outputs, _ = running_services
    for service, text in outputs.items():
        result = run(promtool, "check", "metrics", stdin=text)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), f"{service}:\n{result.stdout}{result.stderr}"


def test_metrics_carry_samples_and_only_contract_names(running_services):
    outputs, _ = running_services
    gateway = outputs["gateway"]
    families = {family.name: family for family in text_string_to_metric_families(gateway)}
    for name in GATEWAY_SERVES:
        family_name = name.removesuffix("_total")  # the parser names counter families without it
        assert family_name in families, name
    for agency_id, _, _ in AGENCIES:
        # The two queries; the hold changes feed is read in the background too, under its own method.
        query = {"agency": agency_id, "method": QUERY[kind_of[agency_id]].method_name}
        assert sample_value(gateway, "chakong_gateway_agency_call_duration_seconds_count", **query) == 2
        assert sample_value(gateway, "chakong_gateway_agency_calls_total", **query, outcome="OK") == 2
        agency = outputs[agency_id]
        assert sample_value(agency, "grpc_server_handling_seconds_count") >= 1
        assert sample_value(agency, "chakong_agency_records", agency=agency_id) > 0
    assert sample_value(gateway, "chakong_gateway_query_duration_seconds_count", api="http") == 1
    assert sample_value(gateway, "chakong_gateway_query_duration_seconds_count", api="grpc") == 1
    assert sample_value(gateway, "grpc_server_handled_total", grpc_method="QueryAssets", grpc_code="OK") == 1

    known = exposed_names()
    for service, text in outputs.items():
        for sample in samples(text):
            if sample.name.startswith(("chakong", "grpc_")):
                assert sample.name in known, f"{service}: {sample.name} is not in the metric contract (tests/test_ops.py)"


def test_metric_labels_are_bounded(running_services):
    outputs, subject = running_services
    for service, text in outputs.items():
        # Not even in help text: the subject and case just queried.
        for secret in (subject.id_number, subject.name, CASE.case_number, CASE.document_number):
            assert secret not in text, f"{service} exposes {secret!r}"
        for sample in samples(text):
            for label, value in sample.labels.items():
                where = f"{service}: {sample.name}{{{label}={value!r}}}"
                assert label in LABEL_VALUES, f"{where}: unexpected label (add it to LABEL_VALUES if it is bounded)"
                allowed = LABEL_VALUES[label]
                if isinstance(allowed, set):
                    assert value in allowed, where
                else:
                    assert allowed.fullmatch(value), where
                assert not ric.is_valid(value) and not uscc.is_valid(value), f"{where}: an identity number"
                assert not SENSITIVE.search(value), f"{where}: looks like a case, plate or account number"


# --- Alertmanager ---------------------------------------------------------------


@pytest.fixture
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("amtool is not installed: run scripts/install_ci_tools.sh")
        pytest.skip("amtool is not installed (scripts/install_ci_tools.sh installs it)")
    return path


def test_alertmanager_config_is_valid(amtool):
    result = run(amtool, "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("labels", "receiver"), [
    (("severity=critical", "alertname=ChakongAgencyDown", "agency=icbc"), "page"),
    (("severity=critical", "alertname=ChakongQueryAvailabilityBudgetBurn", "slo=query_availability"), "page"),
    (("severity=warning", "alertname=ChakongAgencyErrorRatio", "agency=icbc"), "working-hours"),
    (("severity=warning", "alertname=ChakongCertificateExpiringSoon"), "working-hours"),
])
def test_alerts_are_routed_by_severity(amtool, labels, receiver):
    result = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


def test_one_agency_down_inhibits_its_other_alerts():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    assert config["route"]["group_by"] == ["agency"]
    inhibited = set()
    for rule in config["inhibit_rules"]:
        if rule["source_matchers"] == ['alertname="ChakongAgencyDown"']:
            for matcher in rule["target_matchers"]:
                inhibited |= set(re.fullmatch(r'alertname=~"(.*)"', matcher).group(1).split("|"))
    defined = {rule["alert"] for rule in rules() if "alert" in rule}
    assert inhibited <= defined
    assert {"ChakongPartialQueries", "ChakongAgencyErrorRatio", "ChakongTargetDown",
            "ChakongQueryAvailabilityBudgetBurn", "ChakongControlBudgetBurn"} <= inhibited
    # Both receivers hear about resolutions.
    assert all(hook["send_resolved"] for receiver in config["receivers"] for hook in receiver["webhook_configs"])


# --- docker compose ---------------------------------------------------------------


def test_compose_starts_in_layers():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    ours = {name for name, service in services.items() if service.get("image") == "chakong:latest"}
    assert {"gateway-1", "gateway-2", "icbc", "vehicle", "realestate", "pki"} <= ours
    # Monitoring waits for nothing of ours.
    for name in ("prometheus", "alertmanager", "grafana"):
        assert not set(services[name].get("depends_on", {})) & ours, name
    # Gateways wait for their certificates and the ledger, not for agencies.
    for name in ("gateway-1", "gateway-2"):
        assert set(services[name]["depends_on"]) == {"pki", "postgres"}, name
    volumes = services["prometheus"]["volumes"]
    assert any(volume.startswith("prometheus-data:") for volume in volumes)
    for name in ("prometheus.yml", *RULE_FILES):
        assert f"./ops/prometheus/{name}:/etc/prometheus/{name}:ro" in volumes
    assert "./ops/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in services["alertmanager"]["volumes"]
    assert re.search(r"^ALERTMANAGER_PORT=\d+$", (REPO / ".env").read_text(), re.M)


# --- The README's metrics table -------------------------------------------------------


def readme_metrics() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Metrics"):text.index("### From a slow bucket")]
    return {name for row in re.findall(r"^\| (.+?) \|", table, re.M) for name in re.findall(r"`([a-z_:]+)`", row)}


def test_the_readme_names_every_metric_served(running_services):
    outputs, _ = running_services
    named = readme_metrics()
    assert set(CONTRACT) <= named, set(CONTRACT) - named
    for service, text in outputs.items():
        for family in text_string_to_metric_families(text):
            if not family.name.startswith(("chakong", "grpc_")):
                continue
            assert {family.name, f"{family.name}_total"} & named, f"{service} serves {family.name}: add it to README.md"


# --- Cardinality: what callers send cannot make series -------------------------------------


def series(text: str) -> set[tuple]:
    return {(s.name, tuple(sorted(s.labels.items()))) for s in samples(text) if s.name.startswith(("chakong", "grpc_"))}


def test_a_thousand_random_requests_make_no_new_series(start_service, tmp_path):
    import http.client
    import random

    bank = start_service("services.bank", AGENCY_ID="icbc", GRPC_ADDRESS="127.0.0.1:0", METRICS_ADDRESS="127.0.0.1:0",
                         SEED=SEED, SUBJECTS=SUBJECTS)
    registry = tmp_path / "agencies.toml"
    registry.write_text(f'[[agency]]\nid = "icbc"\nkind = "bank"\nname = "icbc 测试"\naddress = "{bank.endpoints["grpc"]}"\n'
                        "timeout_ms = 1500\n", encoding="utf-8")
    gateway = start_service("services.gateway", AGENCY_REGISTRY=str(registry), GATEWAY_GRPC_ADDRESS="127.0.0.1:0",
                            GATEWAY_HTTP_ADDRESS="127.0.0.1:0")
    http_address = gateway.endpoints["http"]
    before = series(scrape(http_address))
    rng = random.Random(15)

    def word(extra: str = "") -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + extra)
                       for _ in range(8))

    # 400 gRPC calls to methods that do not exist, on services that do and do not.
    with grpc.insecure_channel(gateway.endpoints["grpc"]) as channel:
        for i in range(400):
            service = rng.choice(["chakong.gateway.v1.AssetGateway", "chakong.gateway.v1.EnforcementControl", word()])
            call = channel.unary_unary(f"/{service}/{word()}")
            with pytest.raises(grpc.RpcError) as refused:
                call(b"", timeout=5, metadata=[("authorization", f"Bearer {word()}")])
            assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
        # 100 real queries by callers of made-up courts, and 100 without a valid token.
        stub = gateway_pb2_grpc.AssetGatewayStub(channel)
        person = datagen.subjects(int(SEED), int(SUBJECTS))[0]
        subject = common_pb2.Subject(type=person.subject_type, id_number=person.id_number, name=person.name)
        for i in range(200):
            court = f"{rng.randrange(10**6):06d}"
            token = issue_token(court=court) if i % 2 else word()
            request = gateway_pb2.AssetQueryRequest(case=common_pb2.CaseRef(
                case_number=f"(2024)皖01执{rng.randrange(10**6)}号", court_code=court, executor_id="E0001",
                document_number="x"), subject=subject)
            with pytest.raises(grpc.RpcError):
                stub.QueryAssets(request, timeout=5, metadata=[("authorization", f"Bearer {token}")])
    # 400 HTTP requests to paths that do not exist, with any method.
    host, port = http_address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for i in range(400):
            method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
            path = rng.choice(["", "/v1", "/v1/cases", "/v1/freezes"]) + "/" + urllib.parse.quote(word("执号皖")) + f"/{i}"
            connection.request(method, path, body=b"{}" if method != "GET" else None, headers={"Authorization": word()})
            response = connection.getresponse()
            response.read()
            assert 400 <= response.status < 500, (method, path, response.status)
    finally:
        connection.close()

    after = series(scrape(http_address))
    assert after == before, f"new series: {sorted(after - before)[:10]}"
    text = scrape(http_address)
    assert sample_value(text, "grpc_server_handled_total", grpc_method="unknown", grpc_code="UNIMPLEMENTED") == 400
    assert sample_value(text, "chakong_gateway_queries_total", court="other", result="denied") + sample_value(
        text, "chakong_gateway_queries_total", court="other", result="unknown_case") == 100
    assert sample_value(text, "chakong_gateway_queries_total", court="unknown", result="unauthenticated") == 100
    assert sample_value(text, "chakong_gateway_http_requests_total", route="unmatched") == 400
