"""The gateway's door, against real agencies and a real gateway: tokens, per-case authorization, audit, rate limits."""

import contextlib
import sqlite3
import sys

import grpc
import pytest

from protos.gateway.v1 import gateway_pb2_grpc
from services.gateway.config import GatewaySettings
from services.gateway.server import Gateway
from services.common.settings import SettingsError
from services.security import checkpoints
from services.security.tokens import TokenSigner, generate_signing_key
from tests.support.auth import issue_token, register_case_body
from tests.support.gateway import asset_request, population, query_body, register_showcase_case, write_registry
from tests.support.harness import REPO
from tests.support.tls import GatewayEndpoints, tls_settings

COURT_A, COURT_B = "340100", "340200"


@contextlib.asynccontextmanager
async def gateway(directory, agencies, **overrides):
    # TLS on the gateway's ports (the run's certificate), plaintext to the mock agencies.
    settings = GatewaySettings(
        grpc_address="127.0.0.1:0", http_address="127.0.0.1:0", agency_registry=write_registry(directory, agencies),
        data_dir=directory, insecure_plaintext=True, grace_seconds=1.0, **tls_settings(), **overrides,
    )
    running = await Gateway(settings).start()
    try:
        yield running
    finally:
        await running.stop()


async def post(base: GatewayEndpoints, path: str, body: dict, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with base.session(headers=headers) as session:
        async with session.post(path, json=body) as response:
            return response.status, await response.json(), response.headers


async def get(base: GatewayEndpoints, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with base.session(headers=headers) as session:
        async with session.get(path) as response:
            return response.status, await response.json(), response.headers


# Tokens


def forged_token() -> str:
    return TokenSigner(generate_signing_key()).issue("E0001", COURT_A, ("executor",))


def expired_token() -> str:
    from services.security.tokens import load_signing_key
    import os

    key = load_signing_key(os.environ["CHAKONG_TOKEN_SIGNING_KEY"])
    return TokenSigner(key, clock=lambda: 1_000_000).issue("E0001", COURT_A, ("executor",), ttl_s=60)


def wrong_audience_token() -> str:
    import os
    import time
    import uuid

    import jwt

    from services.security.tokens import key_id, load_signing_key

    key = load_signing_key(os.environ["CHAKONG_TOKEN_SIGNING_KEY"])
    now = int(time.time())
    claims = {"iss": "chakong-dev", "aud": "someone-else", "sub": "E0001", "court": COURT_A, "roles": ["executor"],
              "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": key_id(key.public_key())})


BAD_TOKENS = {
    "missing": (None, "no token"),
    "expired": (expired_token, "expired"),
    "forged": (forged_token, "unknown key"),
    "wrong_audience": (wrong_audience_token, "not meant for this service"),
    "garbage": (lambda: "not.a.jwt", "not"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_tokens_are_unauthenticated_over_http_and_grpc(healthy, tmp_path, case):
    make, words = BAD_TOKENS[case]
    token = make() if make else None
    async with gateway(tmp_path, healthy[:1]) as running:
        base = GatewayEndpoints.of(running)
        await register_showcase_case(base)
        status, body, headers = await post(base, "/v1/queries", query_body(), token)
        assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"
        assert words in body["error"]["message"]
        assert headers["WWW-Authenticate"].startswith("Bearer")
        async with GatewayEndpoints.of(running).channel(token or "") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Exempt: health and metadata.
        for path in ("/healthz", "/readyz", "/openapi.json", "/metrics"):
            async with base.session() as session, session.get(path) as response:
                assert response.status == 200, path


async def test_a_token_of_another_court_is_forbidden(healthy, tmp_path):
    async with gateway(tmp_path, healthy[:1]) as running:
        base = GatewayEndpoints.of(running)
        await register_showcase_case(base)
        other = issue_token("E0001", COURT_B, ("executor",))
        status, body, _ = await post(base, "/v1/queries", query_body(), other)
        assert status == 403 and "court" in body["error"]["message"]
        async with GatewayEndpoints.of(running).channel(other) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # And the rightful executor gets the answer.
        status, body, _ = await post(base, "/v1/queries", query_body(), issue_token("E0001", COURT_A, ("executor",)))
        assert status == 200 and body["complete"] is True


# The authorization matrix: 2 courts, 3 executors, 2 cases, debtors and a non-debtor.

EXECUTORS = {  # name: (executor_id, court, roles)
    "a1": ("EA1", COURT_A, ("executor",)),
    "a2": ("EA2", COURT_A, ("executor",)),
    "b1": ("EB1", COURT_B, ("executor",)),
    "admin_a": ("AA1", COURT_A, ("admin",)),
    "approver_a": ("AP1", COURT_A, ("approver",)),
    "team_a": ("TA1", COURT_A, ("query_team",)),
}
CASES = {  # name: (case number, court, executors, debtor index)
    "case_a": ("(2025)皖01执11号", COURT_A, ("EA1",), 0),
    "case_b": ("(2025)皖02执22号", COURT_B, ("EB1",), 1),
}


def subjects():
    people = [s for s in population() if s.subject_type == 1][:3]
    return people  # 0: debtor of case_a, 1: debtor of case_b, 2: nobody's debtor


def subject_json(record) -> dict:
    return {"type": record.subject_type, "id_number": record.id_number, "name": record.name}


def case_json(name: str, executor_id: str = "") -> dict:
    number, court, executors, _ = CASES[name]
    return {"case_number": number, "court_code": court, "executor_id": executor_id or executors[0],
            "document_number": "(2025)文书1号"}


def expected(who: str, case: str, subject: int, action: str) -> bool:
    executor_id, court, roles = EXECUTORS[who]
    _, case_court, executors, debtor = CASES[case]
    if action == "register_case":
        return "admin" in roles and court == case_court
    if action == "get_case":
        return court == case_court and (executor_id in executors or "admin" in roles or "query_team" in roles)
    if action == "approvals":
        return "approver" in roles
    if action == "enforce":
        return court == case_court and executor_id in executors
    if action in ("query", "batch"):
        # The court's query team may query the debtors of any of its court's cases (集约化查控).
        assigned = executor_id in executors or "query_team" in roles
        return court == case_court and assigned and subject == debtor
    return court == case_court and executor_id in executors and subject == CASES[case][3]


async def test_authorization_matrix_over_http(healthy, tmp_path):
    people = subjects()
    async with gateway(tmp_path, healthy[:1]) as running:
        base = GatewayEndpoints.of(running)
        for name, (number, court, executors, debtor) in CASES.items():
            admin = issue_token("ADM", court, ("admin",))
            status, body, _ = await post(
                base, "/v1/cases",
                register_case_body(case_json(name), [subject_json(people[debtor])], executors), admin,
            )
            assert status == 201, body
        cells = 0
        for who, (executor_id, court, roles) in EXECUTORS.items():
            token = issue_token(executor_id, court, roles)
            for case in CASES:
                for subject in range(3):
                    for action in ("query", "batch", "freeze", "get_case", "register_case", "enforce", "approvals"):
                        if action in ("get_case", "register_case", "enforce", "approvals") and subject:
                            continue  # no subject in these: one cell per executor x case
                        cells += 1
                        allowed = expected(who, case, subject, action)
                        ref = case_json(case, executor_id)
                        if action == "query":
                            body = {"case": ref, "subject": subject_json(people[subject]), "agency_ids": ["icbc"]}
                            status, answer, _ = await post(base, "/v1/queries", body, token)
                            ok = status == 200
                        elif action == "batch":
                            # One row: allowed is 202; denied is 403 for the whole batch, the row named.
                            row = {"case_number": CASES[case][0], "court_code": CASES[case][1],
                                   "debtor_id": people[subject].id_number}
                            body = {"rows": [row], "agency_ids": ["icbc"]}
                            status, answer, _ = await post(base, "/v1/batches", body, token)
                            ok = status == 202
                            if not ok:
                                assert status == 403 and answer["rejected"][0]["line"] == 1, answer
                        elif action == "freeze":
                            # An account that does not exist: allowed means it reaches the bank (which
                            # refuses it, recorded as an action); denied means refused at the door.
                            body = {"case": ref, "agency_id": "icbc", "subject": subject_json(people[subject]),
                                    "account_number": "6222000000000000000", "amount_fen": "100"}
                            status, answer, _ = await post(base, "/v1/freezes", body, token)
                            ok = status in (200, 202) or "action" in answer  # recorded, so it was let through
                        elif action == "get_case":
                            status, answer, _ = await get(base, f"/v1/cases/{CASES[case][0]}", token)
                            ok = status == 200
                        elif action == "enforce":
                            status, answer, _ = await post(base, f"/v1/cases/{CASES[case][0]}/enforce",
                                                           {"dry_run": True}, token)
                            ok = status == 200
                        elif action == "approvals":
                            status, answer, _ = await get(base, "/v1/approvals", token)
                            ok = status == 200
                        else:
                            body = register_case_body(case_json(case), [subject_json(people[CASES[case][3]])],
                                                      CASES[case][2])
                            status, answer, _ = await post(base, "/v1/cases", body, token)
                            ok = status in (200, 201)
                        assert ok == allowed, (who, case, subject, action, status, answer)
                        if not ok:
                            assert status in (403, 404) and answer["error"]["message"]
        assert cells == 6 * 2 * (3 * 3 + 4)


def test_four_eyes_every_officer_against_every_approval():
    """authz.decide_approval: an approver of the approval's court who did not ask for the plan, and no one else."""
    from itertools import product

    from services.gateway.access import authz
    from services.security.tokens import Principal

    for (who, (executor_id, court, roles)), requester, approval_court in product(
            EXECUTORS.items(), ("EA1", "AP1"), (COURT_A, COURT_B)):
        decision = authz.decide_approval(Principal(executor_id, court, frozenset(roles)), court_code=approval_court,
                                         requested_by=requester)
        allowed = "approver" in roles and court == approval_court and executor_id != requester
        assert decision.allowed == allowed, (who, requester, approval_court, decision)
        if not allowed:
            assert decision.code == grpc.StatusCode.PERMISSION_DENIED and decision.reason


async def test_a_query_team_batch_naming_another_courts_or_an_unregistered_case_is_refused_and_audited(
        healthy, tmp_path):
    people = subjects()
    async with gateway(tmp_path, healthy[:1]) as running:
        base = GatewayEndpoints.of(running)
        for name, (number, court, executors, debtor) in CASES.items():
            admin = issue_token("ADM", court, ("admin",))
            status, body, _ = await post(base, "/v1/cases", register_case_body(
                case_json(name), [subject_json(people[debtor])], executors), admin)
            assert status == 201, body
        team = issue_token("TA1", COURT_A, ("query_team",))
        own = {"case_number": CASES["case_a"][0], "debtor_id": people[0].id_number}
        rows = [own, {"case_number": CASES["case_b"][0], "court_code": COURT_B, "debtor_id": people[1].id_number},
                {"case_number": "(2025)皖01执999999号", "debtor_id": people[0].id_number}]
        status, body, _ = await post(base, "/v1/batches", {"rows": rows}, team)
        assert status == 403 and body["error"]["code"] == "PERMISSION_DENIED", body
        assert [(r["line"], r["field"]) for r in body["rejected"]] == [(2, "case_number"), (3, "case_number")]
        assert "court" in body["rejected"][0]["rule"] and "not registered" in body["rejected"][1]["rule"]
        status, body, _ = await post(base, "/v1/batches", {"rows": [own]}, team)
        assert status == 202 and body["total"] == 1, body
        # Another executor of the court may not read the team's batch; the team may.
        status, _, _ = await get(base, f"/v1/batches/{body['batch_id']}", issue_token("EA2", COURT_A, ("executor",)))
        assert status == 403
        status, _, _ = await get(base, f"/v1/batches/{body['batch_id']}", team)
        assert status == 200
    with sqlite3.connect(tmp_path / "audit.db") as db:
        queries = db.execute("SELECT executor_id, case_number, outcome FROM audit_record WHERE action = 'query'"
                             " ORDER BY seq").fetchall()
    assert queries == [
        ("TA1", CASES["case_a"][0], "allowed"), ("TA1", CASES["case_b"][0], "denied"),
        ("TA1", "(2025)皖01执999999号", "denied"), ("TA1", CASES["case_a"][0], "allowed"),
    ]


# Audit


async def chakong_audit_verify(url: str) -> tuple[int, str]:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli.main", "audit", "verify", "--store", url,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_every_request_is_audited_and_verify_names_an_altered_record(healthy, tmp_path):
    async with gateway(tmp_path, healthy) as running:
        base = GatewayEndpoints.of(running)
        await register_showcase_case(base)
        assert (await post(base, "/v1/queries", query_body(), issue_token()))[0] == 200
        assert (await post(base, "/v1/queries", query_body(), None))[0] == 401
        assert (await post(base, "/v1/queries", query_body(), issue_token("E0009", COURT_A)))[0] == 403
    store = tmp_path / "audit.db"
    with sqlite3.connect(store) as db:
        records = db.execute(
            "SELECT seq, executor_id, action, outcome, subject_id, result FROM audit_record ORDER BY seq"
        ).fetchall()
    # Written before each request ran (write-ahead); what came of the allowed ones is appended after.
    rows = [r for r in records if r[3] != "answered"]
    answers = [r for r in records if r[3] == "answered"]
    assert [(r[2], r[3]) for r in rows] == [
        ("register_case", "allowed"), ("query", "allowed"), ("query", "denied"), ("query", "denied"),
    ]
    assert rows[1][4] and rows[2][1] == "" and rows[3][1] == "E0009"
    assert [(r[2], r[5]) for r in answers] == [("register_case", "HTTP 201"), ("query", "HTTP 200 complete")]
    assert answers[1][0] > rows[1][0] and answers[1][4] == rows[1][4]
    status, out = await chakong_audit_verify(str(store))
    assert status == 0, out
    with sqlite3.connect(store) as db:
        # Someone with write access to the file: the triggers are no obstacle to them.
        db.execute("DROP TRIGGER audit_record_no_update")
        denial = rows[2][0]  # the first denial: made to read as allowed
        db.execute("UPDATE audit_record SET outcome = 'allowed' WHERE seq = ?", (denial,))
    status, out = await chakong_audit_verify(str(store))
    assert status != 0 and str(denial) in out, out


async def test_an_unwritable_audit_store_refuses_requests(healthy, tmp_path):
    # PostgreSQL that is not there: the gateway does not start at all (fail closed at start-up).
    with pytest.raises(Exception):
        async with gateway(tmp_path, healthy[:1], audit_url="postgresql://nobody@127.0.0.1:1/none"):
            pass
    # A store that breaks while running: every request is refused with 503.
    async with gateway(tmp_path, healthy[:1]) as running:
        base = GatewayEndpoints.of(running)
        await register_showcase_case(base)
        with sqlite3.connect(tmp_path / "audit.db") as db:
            db.execute("DROP TABLE audit_record")
        status, body, _ = await post(base, "/v1/queries", query_body(), issue_token())
        assert status == 503 and "audit" in body["error"]["message"]
        async with GatewayEndpoints.of(running).channel(issue_token()) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


# Rate limits


async def test_queries_beyond_the_executors_rate_get_429_and_resource_exhausted(healthy, tmp_path, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_EXECUTOR_PER_MINUTE", "1")
    monkeypatch.setenv("RATE_LIMIT_EXECUTOR_BURST", "2")
    async with gateway(tmp_path, healthy[:1]) as running:
        base = GatewayEndpoints.of(running)
        await register_showcase_case(base)
        token = issue_token()
        assert [(await post(base, "/v1/queries", query_body(), token))[0] for _ in range(2)] == [200, 200]
        status, body, headers = await post(base, "/v1/queries", query_body(), token)
        assert status == 429 and int(headers["Retry-After"]) >= 1
        async with GatewayEndpoints.of(running).channel(token) as channel:
            call = gateway_pb2_grpc.AssetGatewayStub(channel).QueryAssets(asset_request(), timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert dict(raised.value.trailing_metadata() or ())["retry-after"]


async def test_too_many_agency_ids_are_refused_naming_the_field(healthy, tmp_path):
    async with gateway(tmp_path, healthy[:1]) as running:
        base = GatewayEndpoints.of(running)
        await register_showcase_case(base)
        status, body, _ = await post(base, "/v1/queries", query_body(agency_ids=["x"] * 65), issue_token())
        assert status == 400 and body["error"]["field"] == "agency_ids"



# The audit head, anchored


async def test_the_gateway_checkpoints_the_audit_head_and_verify_checks_the_chain_against_it(healthy, tmp_path):
    key = tmp_path / "pki" / checkpoints.KEY_NAME
    checkpoints.ensure_key(key.parent)
    async with gateway(tmp_path, healthy[:1], audit_checkpoint_key=str(key), audit_checkpoint_seconds=0.1) as running:
        base = GatewayEndpoints.of(running)
        await register_showcase_case(base)
        assert (await post(base, "/v1/queries", query_body(), issue_token()))[0] == 200
    # Stopped: the last head (the query's answer included) was anchored at close.
    log = tmp_path / "audit-checkpoints.jsonl"
    found = await checkpoints.verify_anchored(str(tmp_path / "audit.db"), [log], [key.parent / "audit-checkpoint.pub"])
    assert found.ok and found.anchor.last_good_seq == found.chain.checked >= 3, found


async def test_a_named_checkpoint_key_that_is_missing_stops_the_start(healthy, tmp_path):
    with pytest.raises(SettingsError, match="audit checkpoint key"):
        async with gateway(tmp_path, healthy[:1], audit_checkpoint_key=str(tmp_path / "none.key")):
            pass
