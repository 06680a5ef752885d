"""The console without a browser: money, IDs and times as shown, latency quantiles from /metrics, sessions,
and the headers and cookie every page carries."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.console.agencies import call_figures, quantile
from services.console.app import CSP, create_app
from services.console.config import ConsoleSettings
from services.console.formats import money, parse_yuan, resident_id, shanghai_time
from services.console.sessions import COOKIE, Sessions, Ticket


@given(st.integers(min_value=1, max_value=10**14 - 1))
def test_money_reads_back_as_the_same_fen(fen):
    shown = money(fen)
    assert shown.startswith("¥") and shown[-3] == "."
    assert parse_yuan(shown) == fen


def test_money_and_yuan():
    assert money(123456789) == "¥1,234,567.89"
    assert money("5") == "¥0.05"
    assert parse_yuan("30,000.5") == 3_000_050
    for bad, says in (("", "Enter an amount"), ("1.234", "two decimals"), ("abc", "Not an amount"),
                      ("0", "more than"), ("-3", "more than"), ("NaN", "two decimals")):
        with pytest.raises(ValueError, match=says):
            parse_yuan(bad)


def test_ids_are_masked_unless_the_role_allows_and_times_are_shanghai():
    assert resident_id("340104198811230025", {"executor"}) == "340104**********25"
    assert resident_id("340104198811230025", {"admin", "executor"}) == "340104198811230025"
    assert shanghai_time("2026-12-01T16:30:00Z") == "2026-12-02 00:30:00"
    assert shanghai_time("") == "—"


def test_quantiles_follow_prometheus_histogram_quantile():
    buckets = [(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.99, [(0.1, 0.0), (float("inf"), 0.0)]) is None


def test_call_figures_per_agency_over_every_method():
    text = "\n".join([
        "# TYPE chakong_gateway_agency_call_duration_seconds histogram",
        *(f'chakong_gateway_agency_call_duration_seconds_bucket{{agency="icbc",method="{m}",le="{le}"}} {n}'
          for m in ("QueryAccounts", "Freeze") for le, n in (("0.01", 4), ("0.1", 5), ("+Inf", 5))),
        'chakong_gateway_agency_call_duration_seconds_count{agency="icbc",method="Freeze"} 5',
        'chakong_gateway_agency_call_duration_seconds_sum{agency="icbc",method="Freeze"} 0.1',
        "# TYPE chakong_gateway_agency_calls_total counter",
        'chakong_gateway_agency_calls_total{agency="icbc",method="QueryAccounts",outcome="OK"} 9',
        'chakong_gateway_agency_calls_total{agency="icbc",method="QueryAccounts",outcome="UNAVAILABLE"} 1',
        "# TYPE chakong_gateway_agency_up gauge",
        'chakong_gateway_agency_up{agency="icbc"} 0',
    ]) + "\n"
    icbc = call_figures(text)["icbc"]
    assert icbc["calls"] == 10 and icbc["error_ratio"] == pytest.approx(0.1) and icbc["up"] == 0
    assert icbc["p50_ms"] == pytest.approx(10 * 5 / 8) and 10 < icbc["p99_ms"] <= 100


def test_a_session_ticket_opens_one_stream_only():
    session = Sessions().new()
    key = session.new_ticket(Ticket("(2026)皖01执1号", 0, {}))
    assert session.take_ticket(key) is not None
    assert session.take_ticket(key) is None
    assert session.csrf_ok(session.csrf) and not session.csrf_ok("") and not session.csrf_ok("x")


def test_signing_in_replaces_the_session_id():
    store = Sessions()
    anonymous = store.new()
    from services.console.sessions import Officer

    officer = Officer("E0001", "340100", frozenset({"executor"}), time.time() + 60)
    signed_in = store.sign_in(anonymous, "token", officer, 8)
    assert signed_in.id != anonymous.id and store.get(anonymous.id) is None
    assert signed_in.expires_at <= officer.expires_at


@pytest.mark.parametrize("tls", [False, True])
async def test_every_page_carries_the_csp_and_the_cookie_is_strict(aiohttp_client, tmp_path, tls):
    settings = ConsoleSettings(gateway_url="http://127.0.0.1:9", dev_signing_key=tmp_path / "absent.key",
                               tls_cert="cert.pem" if tls else "", tls_key="key.pem" if tls else "")
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/console/cases", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/sign-in"
    cookie = response.headers["Set-Cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert ("Secure" in cookie) is tls
    for path in ("/console/sign-in", "/console/static/console.css", "/console/nowhere"):
        answer = await client.get(path)
        assert answer.headers["Content-Security-Policy"] == CSP, path
        assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    page = await (await client.get("/console/sign-in")).text()
    assert "<script>" not in page and " style=" not in page and "演示干警" not in page
    refused = await client.post("/console/sign-in", data={"token": "x"})
    assert refused.status == 403
