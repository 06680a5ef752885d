"""Agency health in the gateway: a killed agency is ejected and readmitted; the registry reloads without a restart."""

import asyncio
import re
import signal
import time

import aiohttp
import pytest

from tests.support.agencies import Agency, agency_env
from tests.support.auth import auth_headers
from tests.support.gateway import register_showcase_case, write_registry
from tests.support.gateway_process import DEADLINE_MS, query, start_gateway


async def agency_up(session, base, agency_id) -> float | None:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    found = re.search(rf'^chakong_gateway_agency_up\{{agency="{agency_id}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


async def agencies(session, base) -> dict[str, dict]:
    async with session.get(f"{base}/v1/agencies") as response:
        return {a["id"]: a for a in (await response.json())["agencies"]}


async def restart_and_wait_for_readmission(session, base, start_service, address) -> float:
    """Start icbc again on its old address; seconds until the gateway readmits it."""
    start_service("services.bank", **agency_env("icbc", "bank", "bank", GRPC_ADDRESS=address))
    restarted = time.monotonic()
    while await agency_up(session, base, "icbc") != 1:
        assert time.monotonic() - restarted < 15, "not readmitted within 15 s"
        await asyncio.sleep(0.05)
    return time.monotonic() - restarted


async def test_a_killed_agency_is_ejected_then_readmitted_after_restart(tmp_path, start_service):
    victim = start_service("services.bank", **agency_env("icbc", "bank", "bank"))
    other = start_service("services.vehicle", **agency_env("hefei-vmo", "vehicle"))
    address = victim.endpoints["grpc"]
    _, _, base = start_gateway(
        tmp_path, start_service, [Agency("icbc", "bank", address), Agency("hefei-vmo", "vehicle", other.endpoints["grpc"])]
    )
    await register_showcase_case(base)
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        assert (await query(session, base))["icbc"]["status"] == "AGENCY_STATUS_OK"
        assert await agency_up(session, base, "icbc") == 1

        victim.kill()
        killed = time.monotonic()
        while await agency_up(session, base, "icbc") != 0:
            assert time.monotonic() - killed < 10, "not ejected within 10 s"
            await query(session, base)
        ejected_after = time.monotonic() - killed
        listed = await agencies(session, base)
        assert listed["icbc"]["health"] == "ejected" and listed["icbc"]["ejected_until"]
        assert listed["hefei-vmo"]["health"] == "up"

        started = time.monotonic()
        results = await query(session, base)
        answered_in = time.monotonic() - started
        icbc = results["icbc"]
        assert icbc["status"] == "AGENCY_STATUS_UNAVAILABLE"
        assert icbc["attempts"] == 0 and "ejected until" in icbc["error_message"]
        assert results["hefei-vmo"]["status"] == "AGENCY_STATUS_OK"
        assert answered_in < DEADLINE_MS / 1000 / 4

        readmitted_after = await restart_and_wait_for_readmission(session, base, start_service, address)
        assert (await agencies(session, base))["icbc"]["health"] == "up"
        assert (await query(session, base))["icbc"]["status"] == "AGENCY_STATUS_OK"
    print(
        f"\nejected {ejected_after:.2f} s after SIGKILL; UNAVAILABLE answered in {answered_in * 1000:.1f} ms "
        f"(deadline {DEADLINE_MS} ms); readmitted {readmitted_after:.2f} s after restart"
    )


async def test_an_agency_that_dies_while_idle_is_ejected_without_any_query(tmp_path, start_service):
    victim = start_service("services.bank", **agency_env("icbc", "bank", "bank"))
    address = victim.endpoints["grpc"]
    _, _, base = start_gateway(
        tmp_path, start_service, [Agency("icbc", "bank", address)], AGENCY_IDLE_PROBE_SECONDS="0.3"
    )
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        await asyncio.sleep(1)  # several idle probes of a live agency: it stays up
        assert await agency_up(session, base, "icbc") == 1

        victim.kill()
        killed = time.monotonic()
        while await agency_up(session, base, "icbc") != 0:
            assert time.monotonic() - killed < 5, "an idle dead agency was not ejected within 5 s"
            await asyncio.sleep(0.05)
        ejected_after = time.monotonic() - killed
        assert (await agencies(session, base))["icbc"]["health"] == "ejected"

        await restart_and_wait_for_readmission(session, base, start_service, address)
    print(f"\nidle agency ejected {ejected_after:.2f} s after SIGKILL (idle probe every 0.3 s), no query sent")


def test_an_idle_probe_interval_below_100_ms_is_refused(tmp_path):
    from services.common.settings import SettingsError
    from services.gateway.config import GatewaySettings

    with pytest.raises(SettingsError, match="AGENCY_IDLE_PROBE_SECONDS"):
        GatewaySettings(idle_probe_seconds=0.01).checked()
    assert GatewaySettings(idle_probe_seconds=0).checked().idle_probe_seconds == 0


async def wait_for_agencies(session, base, wanted: set[str], within: float = 5.0) -> None:
    started = time.monotonic()
    while set(await agencies(session, base)) != wanted:
        assert time.monotonic() - started < within, f"registry is not {wanted} after {within} s"
        await asyncio.sleep(0.05)


async def test_sighup_reloads_the_registry_and_a_broken_one_is_rejected(tmp_path, start_service):
    bank = Agency("icbc", "bank", start_service("services.bank", **agency_env("icbc", "bank", "bank")).endpoints["grpc"])
    vmo = Agency("hefei-vmo", "vehicle", start_service("services.vehicle", **agency_env("hefei-vmo", "vehicle")).endpoints["grpc"])
    rer = Agency(
        "hefei-rer", "realestate", start_service("services.realestate", **agency_env("hefei-rer", "realestate")).endpoints["grpc"]
    )
    # No polling in this test: only SIGHUP may reload.
    gateway, registry, base = start_gateway(tmp_path, start_service, [bank, vmo], REGISTRY_POLL_SECONDS="3600")
    await register_showcase_case(base)
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        assert set(await query(session, base)) == {"icbc", "hefei-vmo"}

        write_registry(tmp_path, [bank, rer])
        gateway.signal(signal.SIGHUP)
        await wait_for_agencies(session, base, {"icbc", "hefei-rer"})
        results = await query(session, base)
        assert set(results) == {"icbc", "hefei-rer"}
        assert all(r["status"] == "AGENCY_STATUS_OK" for r in results.values())
        assert await agency_up(session, base, "hefei-vmo") is None

        registry.write_text('[[agency]]\nid = "x"\nkind = "ship"\nname = "n"\naddress = "h:1"\ntimeout_ms = 5\n')
        gateway.signal(signal.SIGHUP)
        started = time.monotonic()
        while "rejected" not in "".join(gateway.output):
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.05)
        assert set(await agencies(session, base)) == {"icbc", "hefei-rer"}
        assert set(await query(session, base)) == {"icbc", "hefei-rer"}
    log = "".join(gateway.output)
    assert "added ['hefei-rer']" in log and "removed ['hefei-vmo']" in log
    assert re.search(r"ERROR.*kind: 'ship' is not one of", log)


async def test_a_changed_registry_file_is_picked_up_without_a_signal(tmp_path, start_service):
    bank = Agency("icbc", "bank", start_service("services.bank", **agency_env("icbc", "bank", "bank")).endpoints["grpc"])
    vmo = Agency("hefei-vmo", "vehicle", start_service("services.vehicle", **agency_env("hefei-vmo", "vehicle")).endpoints["grpc"])
    _, _, base = start_gateway(tmp_path, start_service, [bank], REGISTRY_POLL_SECONDS="0.2")
    async with aiohttp.ClientSession(headers=auth_headers()) as session:
        write_registry(tmp_path, [bank, vmo])
        await wait_for_agencies(session, base, {"icbc", "hefei-vmo"})
