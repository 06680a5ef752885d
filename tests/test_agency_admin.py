"""Agencies registered, updated and removed at run time over HTTP, gRPC and the CLI: persisted in
the ledger, audited, applied at once and by every gateway sharing the ledger; the registry file
still rules its own entries.
"""

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys

import aiohttp
import grpc

from protos.gateway.v1 import admin_pb2, admin_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from tests.support.auth import auth_headers, issue_token
from tests.support.gateway import register_showcase_case
from tests.support.gateway_process import query, start_gateway
from tests.support.harness import REPO
from tests.support.tls import GatewayEndpoints


def by_id(agencies: list[dict]) -> dict[str, dict]:
    return {a["id"]: a for a in agencies}


async def agencies_of(session, base) -> dict[str, dict]:
    async with session.get(f"{base}/v1/agencies") as response:
        return by_id((await response.json())["agencies"])


def entry(agency, **changes) -> dict:
    return {"id": agency.id, "kind": agency.kind, "name": f"{agency.id} 运行时", "address": agency.address,
            "timeout_ms": 1500, **changes}


def audit_actions(data_dir) -> list[tuple[str, str, str]]:
    with contextlib.closing(sqlite3.connect(f"file:{data_dir}/audit.db?mode=ro", uri=True)) as conn:
        return [(action, ",".join(json.loads(agencies)), outcome) for action, agencies, outcome in conn.execute(
            "SELECT action, agency_ids, outcome FROM audit_record WHERE action LIKE 'agencies.%' ORDER BY seq")]


async def test_an_agency_registered_over_http_is_asked_at_once_kept_across_a_restart_and_audited(
        tmp_path, start_service, healthy):
    icbc, alipay = healthy[0], healthy[1]
    gateway, _, base = start_gateway(tmp_path, start_service, [icbc], REGISTRY_POLL_SECONDS="0.2")
    await register_showcase_case(base)
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        async with session.post(f"{base}/v1/agencies", json=entry(alipay)) as response:
            assert response.status == 201, await response.text()
            assert (await response.json())["source"] == "admin"
        listed = await agencies_of(session, base)
        assert listed[alipay.id]["source"] == "admin" and listed[alipay.id]["external"] is True
        assert listed[icbc.id]["source"] == "file"
        results = await query(session, base)
        assert results[alipay.id]["status"] == "AGENCY_STATUS_OK"

        # The registry file's entries are changed in the file, not here.
        async with session.put(f"{base}/v1/agencies/{icbc.id}", json=entry(icbc)) as response:
            assert response.status == 409 and (await response.json())["error"]["code"] == "FAILED_PRECONDITION"
        async with session.post(f"{base}/v1/agencies", json=entry(icbc)) as response:
            assert response.status == 409 and (await response.json())["error"]["code"] == "ALREADY_EXISTS"
        async with session.post(f"{base}/v1/agencies", json=entry(alipay)) as response:
            assert response.status == 409
        async with session.post(f"{base}/v1/agencies", json=entry(alipay, id="x2", address="nowhere")) as response:
            body = await response.json()
            assert response.status == 400 and body["error"]["field"] == "agency.address", body
        async with session.post(f"{base}/v1/agencies", json=entry(alipay, id="x3"),
                                headers=auth_headers(issue_token(roles=("executor",)))) as response:
            assert response.status == 403

    gateway.stop()
    gateway, _, base = start_gateway(tmp_path, start_service, [icbc])
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        assert alipay.id in await agencies_of(session, base)
        async with session.delete(f"{base}/v1/agencies/{alipay.id}") as response:
            assert response.status == 200 and (await response.json())["removed"]["id"] == alipay.id
        assert alipay.id not in await agencies_of(session, base)
        assert alipay.id not in await query(session, base)
        async with session.delete(f"{base}/v1/agencies/{alipay.id}") as response:
            assert response.status == 404
    actions = audit_actions(tmp_path)
    assert ("agencies.register", alipay.id, "allowed") in actions
    assert ("agencies.update", icbc.id, "allowed") in actions
    assert ("agencies.remove", alipay.id, "allowed") in actions
    assert ("agencies.register", "x3", "denied") in actions


async def test_grpc_and_the_cli_change_the_set_and_every_gateway_on_the_ledger_follows(
        tmp_path, start_service, healthy):
    icbc, vmo = healthy[0], healthy[2]
    ledger = f"sqlite:///{tmp_path}/shared-ledger.db"
    gateways = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        # TLS ports: the CLI below trusts the run's CA (CHAKONG_CA), as it trusts make run's.
        gateways.append(start_gateway(tmp_path / name, start_service, [icbc], tls=True, LEDGER_URL=ledger,
                                      REGISTRY_POLL_SECONDS="0.2")[0])
    one, two = gateways
    async with GatewayEndpoints.of(one).channel(issue_token()) as channel:
        added = await admin_pb2_grpc.AgencyAdminStub(channel).RegisterAgency(admin_pb2.RegisterAgencyRequest(
            agency=admin_pb2.AgencyEntry(agency_id=vmo.id, kind=gateway_pb2.AGENCY_KIND_VEHICLE, display_name="车管所",
                                         address=vmo.address, timeout_ms=1500)), timeout=10)
        assert added.source == "admin" and added.external
        try:
            await admin_pb2_grpc.AgencyAdminStub(channel).RegisterAgency(admin_pb2.RegisterAgencyRequest(
                agency=admin_pb2.AgencyEntry(agency_id="Bad_Id", kind=gateway_pb2.AGENCY_KIND_BANK, display_name="x",
                                             address="127.0.0.1:1", timeout_ms=10)), timeout=10)
            raise AssertionError("accepted a bad ID")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and exc.details().startswith("agency.agency_id: ")

    async def listed_at(gateway) -> dict[str, gateway_pb2.Agency]:
        async with GatewayEndpoints.of(gateway).channel(issue_token()) as channel:
            answer = await gateway_pb2_grpc.AssetGatewayStub(channel).ListAgencies(gateway_pb2.ListAgenciesRequest(),
                                                                                  timeout=5)
        return {a.agency_id: a for a in answer.agencies}

    for _ in range(50):  # the other gateway follows at its next poll of the ledger
        if vmo.id in await listed_at(two):
            break
        await asyncio.sleep(0.1)
    assert (await listed_at(two))[vmo.id].external

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli.main", "--gateway", two.endpoints["grpc"], *args],
                              cwd=REPO, capture_output=True, text=True, timeout=30, env={**os.environ})

    updated = cli("agency", "update", "--id", vmo.id, "--kind", "vehicle", "--name", "车管所", "--address",
                  vmo.address, "--timeout-ms", "900")
    assert updated.returncode == 0 and "updated hefei-vmo" in updated.stdout, updated.stderr
    assert (await listed_at(two))[vmo.id].timeout_ms == 900
    removed = cli("agency", "remove", "--id", vmo.id)
    assert removed.returncode == 0, removed.stderr
    for _ in range(50):
        if vmo.id not in await listed_at(one):
            break
        await asyncio.sleep(0.1)
    assert vmo.id not in await listed_at(one)
    unknown = cli("agency", "remove", "--id", vmo.id)
    assert unknown.returncode == 2 and "NOT_FOUND" in unknown.stderr
