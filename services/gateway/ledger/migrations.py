"""The ledger schema as numbered migrations, in SQL both SQLite and PostgreSQL run.

Portable on purpose: TEXT, INTEGER and BIGINT only (money in fen, times in
microseconds since the epoch), no serial columns, no dialect functions.
Serialized agency requests and answers are proto3 JSON in TEXT columns, so
an operator can read them with psql or sqlite3. A migration, once shipped,
is never edited: add the next number.
"""

import logging

from services.gateway.ledger.db import Database

logger = logging.getLogger(__name__)

# (version, name, statements)
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "cases, debtors, actions and holds",
        (
            """
            CREATE TABLE cases (
                case_number TEXT PRIMARY KEY,
                court_code TEXT NOT NULL,
                executor_id TEXT NOT NULL,
                document_number TEXT NOT NULL,
                amount_owed_fen BIGINT NOT NULL,
                costs_fen BIGINT NOT NULL,
                -- sha256 of what makes a registration "the same": court, debtors, amounts
                content_digest TEXT NOT NULL,
                registered_at_us BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE case_debtors (
                case_number TEXT NOT NULL REFERENCES cases (case_number),
                position INTEGER NOT NULL,
                subject_type INTEGER NOT NULL,
                id_number TEXT NOT NULL,
                name TEXT NOT NULL,
                PRIMARY KEY (case_number, id_number)
            )
            """,
            """
            CREATE TABLE actions (
                action_id TEXT PRIMARY KEY,
                idempotency_key TEXT NOT NULL UNIQUE,
                -- sha256 of the kind and the caller's request without its key
                request_digest TEXT NOT NULL,
                kind INTEGER NOT NULL,
                case_number TEXT NOT NULL REFERENCES cases (case_number),
                court_code TEXT NOT NULL,
                executor_id TEXT NOT NULL,
                document_number TEXT NOT NULL,
                agency_id TEXT NOT NULL,
                -- the freeze or seal acted on ('' for a new one or a direct deduction)
                hold_id TEXT NOT NULL,
                amount_fen BIGINT NOT NULL,
                -- what this action adds to the case's frozen total while it is pending
                claim_fen BIGINT NOT NULL,
                asset_id TEXT NOT NULL,
                subject_type INTEGER NOT NULL,
                subject_id TEXT NOT NULL,
                subject_name TEXT NOT NULL,
                -- the agency RPC and its request (proto3 JSON, with agency_key inside)
                agency_method TEXT NOT NULL,
                agency_request TEXT NOT NULL,
                agency_key TEXT NOT NULL UNIQUE,
                state INTEGER NOT NULL,
                -- the agency's answer, proto3 JSON ('' until there is one)
                result TEXT NOT NULL,
                error_code TEXT NOT NULL,
                error_message TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                -- while lease_until_us is in the future, lease_owner is driving it
                lease_until_us BIGINT NOT NULL,
                lease_owner TEXT NOT NULL,
                created_at_us BIGINT NOT NULL,
                updated_at_us BIGINT NOT NULL
            )
            """,
            "CREATE INDEX actions_by_case ON actions (case_number, created_at_us)",
            "CREATE INDEX actions_pending ON actions (lease_until_us) WHERE state = 1",
            """
            CREATE TABLE holds (
                -- the action ID of the freeze or seal that placed it
                hold_id TEXT PRIMARY KEY REFERENCES actions (action_id),
                case_number TEXT NOT NULL REFERENCES cases (case_number),
                -- 'freeze' or 'seal'
                hold_kind TEXT NOT NULL,
                agency_id TEXT NOT NULL,
                agency_kind TEXT NOT NULL,
                -- the agency's freeze_id or seal_id
                agency_hold_id TEXT NOT NULL,
                asset_id TEXT NOT NULL,
                subject_type INTEGER NOT NULL,
                subject_id TEXT NOT NULL,
                subject_name TEXT NOT NULL,
                -- as last reported by the agency
                state INTEGER NOT NULL,
                requested_fen BIGINT NOT NULL,
                frozen_fen BIGINT NOT NULL,
                deducted_fen BIGINT NOT NULL,
                shortfall_fen BIGINT NOT NULL,
                expires_at_us BIGINT NOT NULL,
                -- the agency's AccountFreeze or Seal, proto3 JSON
                detail TEXT NOT NULL,
                created_at_us BIGINT NOT NULL,
                updated_at_us BIGINT NOT NULL
            )
            """,
            "CREATE INDEX holds_by_case ON holds (case_number)",
        ),
    ),
    (
        2,
        "the executors assigned to each case",
        (
            # Comma-separated executor IDs (an ID has no comma); '' on cases
            # registered before, which then count their CaseRef executor only.
            "ALTER TABLE cases ADD COLUMN executor_ids TEXT NOT NULL DEFAULT ''",
        ),
    ),
    (
        3,
        "the agencies' hold changes feeds: one cursor and lease per agency",
        (
            """
            CREATE TABLE hold_feeds (
                agency_id TEXT PRIMARY KEY,
                -- the last change of the agency's feed applied to holds
                cursor BIGINT NOT NULL,
                -- the one gateway reading the feed now, until lease_until_us
                lease_owner TEXT NOT NULL,
                lease_until_us BIGINT NOT NULL,
                synced_at_us BIGINT NOT NULL
            )
            """,
            # 1 while the state is the gateway's own conclusion (a lapse at
            # expiry) that the agency has not confirmed yet.
            "ALTER TABLE holds ADD COLUMN lapsed_by_gateway INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX holds_by_agency_hold ON holds (agency_id, agency_hold_id)",
            # The lapse sweep, twice a second: an index range, not a scan of every hold.
            "CREATE INDEX holds_due ON holds (state, expires_at_us)",
        ),
    ),
    (
        4,
        "agencies registered at run time",
        (
            # Beside the registry file: what an administrator added through
            # the admin API. Every gateway sharing the ledger polls
            # agency_registry.revision, bumped in the same transaction as
            # each change, and reloads when it moved.
            """
            CREATE TABLE managed_agencies (
                agency_id TEXT PRIMARY KEY,
                -- 'bank', 'vehicle' or 'realestate'
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                address TEXT NOT NULL,
                timeout_ms INTEGER NOT NULL,
                created_at_us BIGINT NOT NULL,
                updated_at_us BIGINT NOT NULL
            )
            """,
            "CREATE TABLE agency_registry (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL)",
            "INSERT INTO agency_registry (id, revision) VALUES (1, 0)",
        ),
    ),
    (
        5,
        "batches of queries, every query and each agency's answer with its arrival",
        (
            # A batch (多案集中查询) and its rows. An item is PENDING until
            # every agency asked has a final answer (or its window passed),
            # then DONE; cancelling a batch marks what is still PENDING
            # CANCELLED. While lease_until_us is in the future, lease_owner
            # (a gateway) is asking its agencies; another takes it up after.
            """
            CREATE TABLE batches (
                batch_id TEXT PRIMARY KEY,
                court_code TEXT NOT NULL,
                executor_id TEXT NOT NULL,
                -- 'RUNNING', 'DONE' or 'CANCELLED'
                state TEXT NOT NULL,
                total INTEGER NOT NULL,
                -- comma-separated agency IDs asked for every item, registry order
                agency_ids TEXT NOT NULL,
                -- the rows refused at submission: JSON [{"line","field","rule"}]
                rejected TEXT NOT NULL,
                -- where the rows came from: 'json', 'csv' or 'xlsx'
                source TEXT NOT NULL,
                created_at_us BIGINT NOT NULL,
                updated_at_us BIGINT NOT NULL,
                finished_at_us BIGINT NOT NULL
            )
            """,
            "CREATE INDEX batches_by_court ON batches (court_code, created_at_us)",
            """
            CREATE TABLE batch_items (
                batch_id TEXT NOT NULL REFERENCES batches (batch_id),
                -- the row's line in the upload (its position in a JSON list)
                line INTEGER NOT NULL,
                case_number TEXT NOT NULL,
                court_code TEXT NOT NULL,
                document_number TEXT NOT NULL,
                subject_type INTEGER NOT NULL,
                subject_id TEXT NOT NULL,
                subject_name TEXT NOT NULL,
                -- 'PENDING', 'DONE' or 'CANCELLED'
                state TEXT NOT NULL,
                -- the query the item is asked as (queries.query_id)
                query_id TEXT NOT NULL UNIQUE,
                lease_owner TEXT NOT NULL,
                lease_until_us BIGINT NOT NULL,
                updated_at_us BIGINT NOT NULL,
                PRIMARY KEY (batch_id, line)
            )
            """,
            "CREATE INDEX batch_items_due ON batch_items (state, lease_until_us)",
            # A batch's progress and whether anything of it is still pending.
            "CREATE INDEX batch_items_by_state ON batch_items (batch_id, state)",
            # Every query, interactive or a batch item, and who asked why.
            """
            CREATE TABLE queries (
                query_id TEXT PRIMARY KEY,
                -- 'interactive' or 'batch'
                origin TEXT NOT NULL,
                batch_id TEXT NOT NULL,
                case_number TEXT NOT NULL,
                court_code TEXT NOT NULL,
                executor_id TEXT NOT NULL,
                subject_type INTEGER NOT NULL,
                subject_id TEXT NOT NULL,
                created_at_us BIGINT NOT NULL
            )
            """,
            "CREATE INDEX queries_by_case ON queries (case_number, created_at_us)",
            # One row per agency asked: status 'PENDING' until its answer (or
            # the end of its window) is in. result: the AgencyResult, proto3 JSON.
            """
            CREATE TABLE query_answers (
                query_id TEXT NOT NULL REFERENCES queries (query_id),
                agency_id TEXT NOT NULL,
                -- the query's batch ('' for an interactive query), for the batch's counts
                batch_id TEXT NOT NULL,
                status TEXT NOT NULL,
                result TEXT NOT NULL,
                asked_at_us BIGINT NOT NULL,
                window_until_us BIGINT NOT NULL,
                arrived_at_us BIGINT NOT NULL,
                -- 1 when it came after the interactive reply had gone
                late INTEGER NOT NULL,
                PRIMARY KEY (query_id, agency_id)
            )
            """,
            "CREATE INDEX query_answers_by_batch ON query_answers (batch_id, agency_id, status)",
        ),
    ),
)


async def migrate(db: Database, now_us: int) -> list[int]:
    """Apply every migration not yet applied, under the migration lock; returns the versions applied."""
    applied_now = []
    async with db.migration_lock() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us BIGINT NOT NULL)"
        )
        done = {row["version"] for row in await tx.fetch("SELECT version FROM schema_migrations")}
        newest = max((version for version, _, _ in MIGRATIONS), default=0)
        unknown = sorted(v for v in done if v > newest)
        if unknown:
            raise RuntimeError(
                f"the ledger has schema version {unknown[-1]}, newer than this gateway knows ({newest});"
                " run a gateway at least as new as the one that migrated it"
            )
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_us) VALUES ($1, $2, $3)",
                version, name, now_us,
            )
            applied_now.append(version)
            logger.info("ledger: applied migration %d (%s)", version, name)
    return applied_now
