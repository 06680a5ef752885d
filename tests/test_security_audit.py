"""The audit trail on SQLite and PostgreSQL: the chain verifies, tampering is found and named, failures fail closed."""

import asyncio
import json
import os
import sqlite3
import uuid
from dataclasses import asdict, replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from services.cli.main import main
from services.security import audit
from services.security.audit import AuditEntry, AuditRecord, build_record
from services.security.checkpoints import Checkpointer, CheckpointLog, CheckpointSigner, verify_anchored
from services.security.tokens import generate_signing_key, write_signing_key

PG_ADMIN = os.environ.get("CHAKONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SUBJECT = "340104199003070011"
INSERT = f"INSERT INTO audit_record ({', '.join(audit.COLUMNS)}) VALUES ({{}})"


def entry(n: int = 0, **overrides) -> AuditEntry:
    fields = {
        "executor_id": "E0001",
        "court_code": "340100",
        "case_number": "(2024)皖01执123号",
        "document_number": f"(2024)皖01执123号之{n}",
        "subject_id": SUBJECT,
        "subject_type": "resident_id",
        "action": "query",
        "agency_ids": ("icbc", "hefei-vmo"),
        "outcome": "allowed",
        "result": f"{n} accounts",
        "request_id": f"req-{n}",
    }
    fields.update(overrides)
    return AuditEntry(**fields)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


# One way to reach each backend's tables directly, as someone with database access would.

class SqliteBackend:
    name = "sqlite"

    def __init__(self, tmp_path):
        self.path = tmp_path / "audit.db"
        self.url = f"sqlite:///{self.path}"  # absolute path: sqlite:////tmp/...

    async def execute(self, *statements: str) -> None:
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("DROP TRIGGER IF EXISTS audit_record_no_update")
            conn.execute("DROP TRIGGER IF EXISTS audit_record_no_delete")
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()

    async def insert(self, record: AuditRecord) -> None:
        conn = sqlite3.connect(self.path)
        try:
            conn.execute(INSERT.format(", ".join("?" * len(audit.COLUMNS))), audit._record_row(record))
            conn.commit()
        finally:
            conn.close()

    async def cleanup(self) -> None:
        pass


class PostgresBackend:
    name = "postgresql"

    def __init__(self, database: str):
        self.database = database
        self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"

    @classmethod
    async def create(cls) -> "PostgresBackend":
        import asyncpg

        database = f"chakong_audit_test_{uuid.uuid4().hex[:12]}"
        try:
            admin = await asyncpg.connect(PG_ADMIN, timeout=3)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_ADMIN}: {exc}")
            pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN}: {exc}")
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
        finally:
            await admin.close()
        return cls(database)

    async def execute(self, *statements: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction():
                await conn.execute("DROP TRIGGER IF EXISTS audit_record_append_only ON audit_record")
                for statement in statements:
                    await conn.execute(statement)
        finally:
            await conn.close()

    async def insert(self, record: AuditRecord) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            placeholders = ", ".join(f"${i}" for i in range(1, len(audit.COLUMNS) + 1))
            await conn.execute(INSERT.format(placeholders), *audit._record_row(record))
        finally:
            await conn.close()

    async def drop(self) -> None:
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await admin.close()

    async def cleanup(self) -> None:
        await self.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request, tmp_path):
    chosen = SqliteBackend(tmp_path) if request.param == "sqlite" else await PostgresBackend.create()
    yield chosen
    await chosen.cleanup()


@pytest.fixture
async def store(backend):
    opened = await audit.open_audit_store(backend.url, clock=Clock())
    yield opened
    await opened.close()


async def fill(store, count: int = 5) -> list[AuditRecord]:
    return [await store.append(entry(n)) for n in range(1, count + 1)]


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_appended_records_form_a_verified_chain(store):
    records = await fill(store)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:]))
    result = await store.verify()
    assert result.ok and result.checked == 5 and result.head_hash == records[-1].hash
    assert str(result) == f"OK: 5 records (head {records[-1].hash})"
    assert await store.records() == records


async def test_the_hash_covers_the_canonical_json_of_every_field(store):
    record = (await fill(store, 1))[0]
    fields = {**asdict(record), "agency_ids": ["icbc", "hefei-vmo"], "v": 1}
    del fields["hash"]
    assert record.hash == audit.hashlib.sha256(audit.canonical_json(fields)).hexdigest()
    assert b'"seq":1' in audit.canonical_json(fields) and b'"prev_hash":"000' in audit.canonical_json(fields)


async def test_an_empty_store_verifies(store):
    result = await store.verify()
    assert result.ok and result.checked == 0


async def test_an_edited_record_is_named(store, backend):
    await fill(store)
    await backend.execute("UPDATE audit_record SET outcome = 'denied' WHERE seq = 3")
    result = await store.verify()
    assert not result.ok
    assert (result.first_bad_seq, result.checked) == (3, 2)
    assert "edited" in result.reason
    assert str(result).startswith("TAMPERED at record #3: ")


async def test_an_edited_and_rehashed_record_is_named_by_the_link_from_the_next(store, backend):
    records = await fill(store)
    edited = build_record(entry(3, executor_id="E9999"), 3, records[1].hash, records[2].recorded_at)
    await backend.execute(f"UPDATE audit_record SET executor_id = 'E9999', hash = '{edited.hash}' WHERE seq = 3")
    result = await store.verify()
    assert result.first_bad_seq == 3
    assert "altered and re-hashed" in result.reason


@pytest.mark.parametrize("deleted, named", [(1, 1), (3, 3), (5, 5)])
async def test_a_deleted_record_is_named(store, backend, deleted, named):
    await fill(store)
    await backend.execute(f"DELETE FROM audit_record WHERE seq = {deleted}")
    result = await store.verify()
    assert not result.ok and result.first_bad_seq == named
    assert "missing" in result.reason


async def test_a_record_inserted_in_the_middle_is_named(store, backend):
    """A well-formed forgery chained to #2, the records after it renumbered to make room."""
    records = await fill(store)
    forged = build_record(entry(99, subject_id="110101199003074518"), 3, records[1].hash, records[1].recorded_at)
    await backend.execute(*(f"UPDATE audit_record SET seq = {seq + 1} WHERE seq = {seq}" for seq in (5, 4, 3)))
    await backend.insert(forged)
    result = await store.verify()
    assert result.first_bad_seq == 3
    assert "inserted" in result.reason


async def test_a_record_appended_behind_the_stores_back_is_named(store, backend):
    records = await fill(store)
    forged = build_record(entry(99), 6, records[-1].hash, records[-1].recorded_at)
    await backend.insert(forged)
    result = await store.verify()
    assert result.first_bad_seq == 6
    assert "inserted" in result.reason


async def test_reordered_records_are_named(store, backend):
    await fill(store)
    await backend.execute(
        "UPDATE audit_record SET seq = 100 WHERE seq = 2",
        "UPDATE audit_record SET seq = 2 WHERE seq = 4",
        "UPDATE audit_record SET seq = 4 WHERE seq = 100",
    )
    result = await store.verify()
    assert result.first_bad_seq == 2
    assert "reordered" in result.reason


async def test_the_application_cannot_update_or_delete_records(store, backend):
    await fill(store, 2)
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.path)
        try:
            for statement in ("UPDATE audit_record SET outcome = 'denied'", "DELETE FROM audit_record"):
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    conn.execute(statement)
        finally:
            conn.close()
    else:
        import asyncpg

        conn = await asyncpg.connect(backend.url)
        try:
            for statement in ("UPDATE audit_record SET outcome = 'denied'", "DELETE FROM audit_record",
                              "TRUNCATE audit_record"):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await conn.execute(statement)
        finally:
            await conn.close()
    assert (await store.verify()).ok


async def test_concurrent_appends_from_two_stores_never_fork_the_chain(backend):
    first = await audit.open_audit_store(backend.url)
    second = await audit.open_audit_store(backend.url)
    try:
        written = await asyncio.gather(*(s.append(entry(n)) for n in range(40) for s in (first, second)))
        assert sorted(r.seq for r in written) == list(range(1, 81))
        result = await first.verify()
        assert result.ok and result.checked == 80
    finally:
        await first.close()
        await second.close()


async def test_metrics_count_records_by_outcome(store):
    allowed, denied = counter("chakong_audit_records_total", outcome="allowed"), counter(
        "chakong_audit_records_total", outcome="denied"
    )
    await store.append(entry(1))
    await store.append(entry(2, outcome="denied", reason="subject is not a debtor of the case"))
    assert counter("chakong_audit_records_total", outcome="allowed") == allowed + 1
    assert counter("chakong_audit_records_total", outcome="denied") == denied + 1


async def test_append_fails_closed_when_sqlite_is_locked(tmp_path):
    path = tmp_path / "audit.db"
    store = await audit.SqliteAuditStore(path, busy_timeout_ms=50).open()
    await store.append(entry(1))
    blocker = sqlite3.connect(path, isolation_level=None)
    failures = counter("chakong_audit_write_failures_total")
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(audit.AuditWriteError, match="locked"):
            await store.append(entry(2))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert counter("chakong_audit_write_failures_total") == failures + 1
    result = await store.verify()
    assert result.ok and result.checked == 1  # the failed append left nothing behind
    assert (await store.append(entry(3))).seq == 2
    await store.close()


async def test_an_sqlite_store_that_cannot_be_created_is_unavailable(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(audit.AuditUnavailable, match="cannot open"):
        await audit.open_audit_store(f"sqlite:///{tmp_path}/file/audit.db")


async def test_append_to_a_closed_store_fails_closed(tmp_path):
    store = await audit.open_audit_store(str(tmp_path / "audit.db"))
    await store.close()
    with pytest.raises(audit.AuditWriteError, match="closed"):
        await store.append(entry(1))


async def test_appends_racing_a_close_are_all_answered(tmp_path):
    store = await audit.open_audit_store(str(tmp_path / "audit.db"))
    appends = [asyncio.ensure_future(store.append(entry(n))) for n in range(50)]
    await asyncio.sleep(0)  # queued, some perhaps written
    await store.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*appends, return_exceptions=True), timeout=5)
    written = [o for o in outcomes if isinstance(o, audit.AuditRecord)]
    assert all(isinstance(o, audit.AuditRecord | audit.AuditWriteError) for o in outcomes)
    assert [r.seq for r in written] == list(range(1, len(written) + 1))
    reopened = await audit.open_audit_store(str(tmp_path / "audit.db"))
    result = await reopened.verify()
    await reopened.close()
    assert result.ok and result.checked == len(written)


async def test_an_unreachable_postgres_is_unavailable():
    with pytest.raises(audit.AuditUnavailable, match="cannot open"):
        await audit.open_audit_store("postgresql://postgres:secret@127.0.0.1:1/none", connect_timeout_s=2)


async def test_unavailable_messages_hide_the_password():
    with pytest.raises(audit.AuditUnavailable) as failed:
        await audit.open_audit_store("postgresql://postgres:s3cr3t@127.0.0.1:1/none", connect_timeout_s=2)
    assert "s3cr3t" not in str(failed.value)


async def test_append_fails_closed_when_postgres_goes_away():
    backend = await PostgresBackend.create()
    store = await audit.open_audit_store(backend.url)
    try:
        await store.append(entry(1))
        failures = counter("chakong_audit_write_failures_total")
        await backend.drop()  # terminates the store's connections too
        with pytest.raises(audit.AuditWriteError):
            await store.append(entry(2))
        assert counter("chakong_audit_write_failures_total") == failures + 1
    finally:
        await store.close()
        await backend.drop()


def test_entries_are_checked_before_they_reach_the_store():
    with pytest.raises(ValueError, match="outcome"):
        entry(outcome="maybe")
    with pytest.raises(ValueError, match="reason"):
        entry(outcome="denied")
    with pytest.raises(ValueError, match="action"):
        entry(action="DROP TABLE")
    with pytest.raises(ValueError, match="subject_id: is not valid Unicode"):
        entry(subject_id="\ud800")
    with pytest.raises(ValueError, match="NUL"):
        entry(case_number="(2024)\x00")
    with pytest.raises(ValueError, match="agency_ids\\[1\\]: must be text"):
        entry(agency_ids=("icbc", 7))


def test_the_subject_is_masked_outside_the_store():
    record = build_record(entry(1), 1, audit.GENESIS_HASH, "2026-03-01T09:00:00.000000Z")
    assert SUBJECT not in repr(record) and SUBJECT not in repr(entry(1))
    assert record.subject_masked == "340104**********11"
    assert audit.entries_masked([record])[0]["subject_id"] == "340104**********11"
    assert replace(record, subject_id="x").computed_hash() != record.hash


@pytest.mark.parametrize(
    "url, kind",
    [("sqlite:///var/audit.db", audit.SqliteAuditStore), ("postgresql://u@h/db", audit.PostgresAuditStore),
     ("var/audit.db", audit.SqliteAuditStore)],
)
def test_store_urls(url, kind):
    assert isinstance(audit.store_for_url(url), kind)
    assert str(audit.store_for_url("sqlite:///var/audit.db").path) == "var/audit.db"
    assert str(audit.store_for_url("sqlite:////abs/audit.db").path) == "/abs/audit.db"
    with pytest.raises(audit.AuditUnavailable):
        audit.store_for_url("mysql://x/y")


async def test_cli_verify_reports_ok_then_names_the_tampered_record(store, backend, capsys):
    await fill(store, 3)
    assert await asyncio.to_thread(main, ["audit", "verify", "--store", backend.url]) == 0
    assert capsys.readouterr().out.startswith("OK: 3 records")
    await backend.execute("UPDATE audit_record SET result = '0 accounts' WHERE seq = 2")
    assert await asyncio.to_thread(main, ["audit", "verify", "--store", backend.url]) == 1
    assert capsys.readouterr().out.startswith("TAMPERED at record #2: ")


def test_cli_verify_does_not_create_a_missing_store(tmp_path, capsys):
    assert main(["audit", "verify", "--store", f"sqlite:///{tmp_path}/typo.db"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()


# The chain checker alone, over generated chains and every kind of tampering.

def chain(count: int) -> list[AuditRecord]:
    records, prev = [], audit.GENESIS_HASH
    for n in range(1, count + 1):
        records.append(build_record(entry(n), n, prev, f"2026-03-01T09:00:00.{n:06d}Z"))
        prev = records[-1].hash
    return records


def check(records: list[AuditRecord], head: tuple[int, str]) -> audit.VerifyResult:
    checker = audit.ChainChecker()
    for record in records:
        if not checker.feed(record):
            break
    return checker.finish(head)


def renumbered(records: list[AuditRecord]) -> list[AuditRecord]:
    return [replace(r, seq=n) for n, r in enumerate(records, start=1)]


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 12), st.data())
def test_every_tampering_names_the_first_bad_record(count, data):
    records = chain(count)
    head = (records[-1].seq, records[-1].hash)
    assert check(records, head).ok
    i = data.draw(st.integers(0, count - 1), label="position")
    kind = data.draw(st.sampled_from(["edit", "delete", "swap", "insert", "delete-renumbered"]), label="kind")
    if kind == "edit":
        field_name = data.draw(st.sampled_from(["executor_id", "court_code", "subject_id", "outcome", "result",
                                                "recorded_at", "prev_hash"]))
        tampered = list(records)
        tampered[i] = replace(records[i], **{field_name: getattr(records[i], field_name) + "x"})
        expected = i + 1
    elif kind == "delete":
        tampered = records[:i] + records[i + 1:]
        expected = i + 1
    elif kind == "delete-renumbered":
        tampered = renumbered(records[:i] + records[i + 1:])
        expected = i + 1
    elif kind == "swap":
        j = data.draw(st.integers(0, count - 1).filter(lambda j: j != i), label="other")
        first, second = min(i, j), max(i, j)
        order = list(records)
        order[first], order[second] = order[second], order[first]
        tampered = renumbered(order)
        expected = first + 1
    else:
        prev = records[i - 1].hash if i else audit.GENESIS_HASH
        forged = build_record(entry(99), i + 1, prev, "2026-03-01T10:00:00.000000Z")
        tampered = records[:i] + [forged] + [replace(r, seq=r.seq + 1) for r in records[i:]]
        expected = i + 1
    result = check(tampered, head)
    assert not result.ok
    assert result.first_bad_seq == expected, result.reason


# Signed checkpoints of the head, outside the store: a consistent rewrite of the tail and the head is found.


@pytest.fixture
def anchor(tmp_path):
    """A checkpoint key pair (its public half in a file) and an empty checkpoint log."""
    key = generate_signing_key()
    public = tmp_path / "audit-checkpoint.pub"
    write_signing_key(tmp_path / "audit-checkpoint.key", public, key)
    return CheckpointSigner(key), CheckpointLog(tmp_path / "audit-checkpoints.jsonl"), public


def rewrite_from(records: list[AuditRecord], seq: int, keep: int | None = None) -> list[str]:
    """SQL an attacker with write access runs: record #seq says something else, every later hash is
    recomputed and the head follows; with `keep`, the records after #keep are dropped too."""
    statements, prev = [], records[seq - 2].hash if seq > 1 else audit.GENESIS_HASH
    for record in records[seq - 1:keep]:
        forged = replace(record, result="0 accounts" if record.seq == seq else record.result, prev_hash=prev, hash="")
        forged = replace(forged, hash=forged.computed_hash())
        statements.append(f"UPDATE audit_record SET result = '{forged.result}', prev_hash = '{forged.prev_hash}', "
                          f"hash = '{forged.hash}' WHERE seq = {forged.seq}")
        prev = forged.hash
    if keep is not None:
        statements.append(f"DELETE FROM audit_record WHERE seq > {keep}")
    last = keep if keep is not None else records[-1].seq
    statements.append(f"UPDATE audit_head SET seq = {last}, hash = '{prev}' WHERE id = 1")
    return statements


async def anchored_store(store, anchor) -> None:
    """13 records, checkpointed at #5 and #10."""
    signer, log, _ = anchor
    checkpointer = Checkpointer(store.head, signer, log, interval_s=3600)
    await fill(store, 5)
    assert (await checkpointer.checkpoint()).seq == 5
    for n in range(6, 11):
        await store.append(entry(n))
    assert (await checkpointer.checkpoint()).seq == 10
    assert await checkpointer.checkpoint() is None  # the head did not move: nothing new to sign
    for n in range(11, 14):
        await store.append(entry(n))


@pytest.mark.parametrize("keep", [None, 8], ids=["tail-rewritten", "tail-rewritten-and-cut"])
async def test_a_consistent_rewrite_of_the_tail_and_head_is_named_by_the_checkpoints(store, backend, anchor, keep,
                                                                                     capsys):
    _, log, public = anchor
    await anchored_store(store, anchor)
    found = await verify_anchored(backend.url, [log.path], [public])
    assert found.ok and found.anchor.last_good_seq == 10 and found.first_untrusted_seq is None
    assert "2 checkpoints match, the latest at #10" in str(found)

    await backend.execute(*rewrite_from(await store.records(), 7, keep))
    assert (await store.verify()).ok  # the chain on its own cannot tell
    found = await verify_anchored(backend.url, [log.path], [public])
    assert not found.ok
    assert (found.anchor.last_good_seq, found.first_untrusted_seq) == (5, 6)
    assert "first record after the last good checkpoint: #6" in str(found)
    assert ("no longer holds" if keep else "hashes to") in found.anchor.reason

    argv = ["audit", "verify", "--store", backend.url, "--checkpoints", str(log.path), "--checkpoint-key", str(public)]
    assert await asyncio.to_thread(main, argv) == 1
    out = capsys.readouterr().out
    assert out.startswith("chain: OK: ") and "checkpoints: REWRITTEN after record #5" in out and "#6" in out


async def test_an_altered_or_foreign_checkpoint_fails_verification(store, backend, anchor, tmp_path):
    _, log, public = anchor
    await anchored_store(store, anchor)
    lines = log.path.read_text().splitlines()
    # Moving a checkpoint's hash to match a rewrite breaks its signature.
    log.path.write_text(lines[0] + "\n" + lines[1].replace('"seq":10', '"seq":9') + "\n")
    found = await verify_anchored(backend.url, [log.path], [public])
    assert not found.ok and "line 2: bad signature" in found.anchor.reason
    # A checkpoint signed with another key is not taken on trust.
    log.path.write_text(lines[0] + "\n")
    log.append(CheckpointSigner(generate_signing_key()).sign(*await store.head()))
    found = await verify_anchored(backend.url, [log.path], [public])
    assert not found.ok and "unknown key" in found.anchor.reason
    log.path.write_text("not json\n")
    assert "unreadable" in (await verify_anchored(backend.url, [log.path], [public])).anchor.reason


async def test_checkpointers_of_several_workers_write_one_line_per_head_and_one_at_close(tmp_path, anchor):
    signer, log, _ = anchor
    store = await audit.open_audit_store(str(tmp_path / "audit.db"))
    workers = [Checkpointer(store.head, signer, log, interval_s=0.05) for _ in range(2)]
    try:
        assert await workers[0].checkpoint() is None  # an empty chain needs no anchor
        await fill(store, 2)
        for worker in workers:
            worker.start()
        await asyncio.sleep(0.3)
        await store.append(entry(3))
        for worker in workers:
            await worker.close()  # the last head is anchored at close
        seqs = [json.loads(line)["seq"] for line in log.path.read_text().splitlines()]
        assert seqs == [2, 3]
    finally:
        await store.close()


async def test_cli_verify_without_a_checkpoint_file_checks_the_chain_alone(store, backend, tmp_path, capsys):
    await fill(store, 2)
    assert await asyncio.to_thread(main, ["audit", "verify", "--store", backend.url]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("OK: 2 records") and "no checkpoint file" in captured.err
    missing = ["--checkpoints", str(tmp_path / "none.jsonl")]
    assert await asyncio.to_thread(main, ["audit", "verify", "--store", backend.url, *missing]) == 2
