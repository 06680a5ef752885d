"""Gateway settings, read once from the environment."""

from dataclasses import dataclass
from pathlib import Path

from services.common.settings import SettingsError, env_address, env_float, env_int, env_str

# Where CHAKONG_CRASH_AT may stop the process (tests only; see control.py).
CRASH_POINTS = ("after_intent", "after_agency_call", "after_outcome")

# INSECURE_PLAINTEXT, the one development flag for plaintext: which hops go without TLS
# (agency links, the gateway's own gRPC and HTTP ports). "agencies" keeps the
# gateway's ports on TLS in front of plaintext mock agencies (tests, the bench).
PLAINTEXT_HOPS = {"0": (False, False), "1": (True, True), "agencies": (True, False)}


@dataclass(frozen=True)
class GatewaySettings:
    grpc_address: str = "127.0.0.1:50051"
    http_address: str = "127.0.0.1:8080"
    agency_registry: Path = Path("config/agencies.toml")
    # The overall deadline of one query, and the most a caller may ask for.
    query_deadline_ms: int = 2000
    # How long in-flight queries may run on when the gateway is asked to stop.
    grace_seconds: float = 5.0
    # The ledger: the SQLite file $DATA_DIR/gateway-ledger.db unless
    # LEDGER_URL names one (sqlite:///path or postgresql://...).
    data_dir: Path = Path("var")
    ledger_url: str = ""
    # How long a control request waits for its agency (all retries), and
    # the most one attempt may take; what is left unanswered stays PENDING.
    control_deadline_ms: int = 10_000
    control_attempt_timeout_ms: int = 4_000
    # A gateway driving an action holds it this long; then another may.
    lease_seconds: float = 30.0
    # How often PENDING actions are looked for and driven again.
    redrive_interval_seconds: float = 5.0
    # Test only: die by SIGKILL at this point of the first action.
    crash_at: str = ""
    # Mutual TLS to the agencies (files as `chakong pki init` writes them);
    # insecure_plaintext (INSECURE_PLAINTEXT=1 or agencies) dials plaintext, development only.
    agency_tls_ca: Path = Path("var/pki/ca.crt")
    agency_tls_cert: Path = Path("var/pki/gateway-client.crt")
    agency_tls_key: Path = Path("var/pki/gateway-client.key")
    insecure_plaintext: bool = False
    # The gateway's own gRPC and HTTP ports serve TLS with this certificate
    # (the CA only checks it at start and reload; clients need no certificate:
    # they bring tokens). SIGHUP reloads the files without a restart.
    # insecure_plaintext_ports (INSECURE_PLAINTEXT=1) serves plaintext, development only.
    tls_cert: Path = Path("var/pki/gateway.crt")
    tls_key: Path = Path("var/pki/gateway.key")
    tls_ca: Path = Path("var/pki/ca.crt")
    insecure_plaintext_ports: bool = False
    # The audit trail: $DATA_DIR/audit.db unless AUDIT_URL names one.
    audit_url: str = ""
    # Signed checkpoints of the audit chain head, appended every this many
    # seconds (0: never) to a file outside the store, with an Ed25519 key of
    # their own. Without AUDIT_CHECKPOINT_KEY, the key `chakong pki init`
    # writes, if it is there; a key named but missing stops the start.
    audit_checkpoint_seconds: float = 60.0
    audit_checkpoint_key: str = ""
    audit_checkpoint_file: str = ""
    # Agency health: eject after this many consecutive failures (UNAVAILABLE,
    # DEADLINE_EXCEEDED, TIMEOUT) for a cool-down that doubles up to the cap.
    eject_after_failures: int = 3
    eject_cooldown_seconds: float = 5.0
    eject_cooldown_max_seconds: float = 60.0
    # Health-check an agency no query has reached for this long (0: never),
    # so one that died while idle shows as down without waiting for traffic.
    idle_probe_seconds: float = 10.0
    # Hedged queries (agencies/hedging.py): on unless an agency's registry entry says `hedge = false` (or
    # HEDGE_QUERIES=0 turns them off for every agency whose entry does not say `hedge = true`); the delay is this
    # percentile of the agency's recent latencies; hedges stay below this share of the calls.
    hedge_queries: bool = True
    hedge_percentile: float = 97.0
    hedge_budget_percent: float = 5.0
    # How often the registry file is checked for changes (SIGHUP reloads at once).
    registry_poll_seconds: float = 2.0
    # How often each agency's hold changes feed is read (0: never), and how
    # often the ledger's live holds are compared with the agencies' own.
    hold_sync_seconds: float = 0.5
    hold_reconcile_seconds: float = 60.0
    # Worker processes sharing the ports (SO_REUSEPORT); see workers.py.
    # reuse_port is set by the supervisor for its workers, not by hand.
    workers: int = 1
    reuse_port: bool = False
    # Batches: at most this many rows each (413 beyond), an upload at most
    # this many bytes, and this many items asked at once by each gateway.
    batch_max_rows: int = 10_000
    batch_max_upload_bytes: int = 8 * 1024 * 1024
    batch_concurrency: int = 32
    # How long an agency's answer is waited for beyond a query's deadline,
    # unless its registry entry sets answer_window_ms; 0 turns late answers
    # off for interactive queries (a batch then waits the agency's timeout).
    answer_window_ms: int = 600_000
    # At most this many calls per agency go on after their interactive reply.
    late_calls_per_agency: int = 100

    @property
    def scheme(self) -> str:
        """How clients reach the HTTP port."""
        return "http" if self.insecure_plaintext_ports else "https"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "gateway-ledger.db"

    @property
    def audit_store_url(self) -> str:
        return self.audit_url or str(self.data_dir / "audit.db")

    @property
    def audit_checkpoint_key_path(self) -> Path:
        return Path(self.audit_checkpoint_key or "var/pki/audit-checkpoint.key")

    @property
    def audit_checkpoint_path(self) -> Path:
        if self.audit_checkpoint_file:
            return Path(self.audit_checkpoint_file)
        return self.data_dir / "audit-checkpoints.jsonl"

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        flag = env_str("INSECURE_PLAINTEXT", "0")
        if flag not in PLAINTEXT_HOPS:
            raise SettingsError(f"INSECURE_PLAINTEXT={flag!r}: expected 0 (TLS on every hop), 1 (plaintext on every"
                                " hop, development only) or agencies (plaintext to the agencies only)")
        plaintext_agencies, plaintext_ports = PLAINTEXT_HOPS[flag]
        return cls(
            grpc_address=env_address("GATEWAY_GRPC_ADDRESS", cls.grpc_address),
            http_address=env_address("GATEWAY_HTTP_ADDRESS", cls.http_address),
            agency_registry=Path(env_str("AGENCY_REGISTRY", str(cls.agency_registry))),
            query_deadline_ms=env_int("QUERY_DEADLINE_MS", cls.query_deadline_ms, minimum=1, maximum=600_000),
            grace_seconds=env_float("GRACE_SECONDS", cls.grace_seconds, minimum=0.0, maximum=300.0),
            hedge_queries=env_int("HEDGE_QUERIES", int(cls.hedge_queries), minimum=0, maximum=1) == 1,
            hedge_percentile=env_float("HEDGE_PERCENTILE", cls.hedge_percentile, minimum=50.0, maximum=99.9),
            hedge_budget_percent=env_float("HEDGE_BUDGET_PERCENT", cls.hedge_budget_percent, minimum=0.0,
                                           maximum=100.0),
            data_dir=Path(env_str("DATA_DIR", str(cls.data_dir))),
            ledger_url=env_str("LEDGER_URL", cls.ledger_url),
            control_deadline_ms=env_int("CONTROL_DEADLINE_MS", cls.control_deadline_ms, minimum=100, maximum=600_000),
            control_attempt_timeout_ms=env_int(
                "CONTROL_ATTEMPT_TIMEOUT_MS", cls.control_attempt_timeout_ms, minimum=10, maximum=600_000
            ),
            lease_seconds=env_float("LEDGER_LEASE_SECONDS", cls.lease_seconds, minimum=0.1, maximum=86_400.0),
            redrive_interval_seconds=env_float(
                "REDRIVE_INTERVAL_SECONDS", cls.redrive_interval_seconds, minimum=0.05, maximum=3_600.0
            ),
            crash_at=env_str("CHAKONG_CRASH_AT", ""),
            eject_after_failures=env_int("EJECT_AFTER_FAILURES", cls.eject_after_failures, minimum=1, maximum=1000),
            eject_cooldown_seconds=env_float(
                "EJECT_COOLDOWN_SECONDS", cls.eject_cooldown_seconds, minimum=0.05, maximum=3_600.0
            ),
            eject_cooldown_max_seconds=env_float(
                "EJECT_COOLDOWN_MAX_SECONDS", cls.eject_cooldown_max_seconds, minimum=0.05, maximum=86_400.0
            ),
            idle_probe_seconds=env_float(
                "AGENCY_IDLE_PROBE_SECONDS", cls.idle_probe_seconds, minimum=0.0, maximum=86_400.0
            ),
            registry_poll_seconds=env_float(
                "REGISTRY_POLL_SECONDS", cls.registry_poll_seconds, minimum=0.05, maximum=3_600.0
            ),
            hold_sync_seconds=env_float("HOLD_SYNC_SECONDS", cls.hold_sync_seconds, minimum=0.0, maximum=3_600.0),
            hold_reconcile_seconds=env_float(
                "HOLD_RECONCILE_SECONDS", cls.hold_reconcile_seconds, minimum=0.1, maximum=86_400.0
            ),
            workers=env_int("GATEWAY_WORKERS", cls.workers, minimum=1, maximum=64),
            reuse_port=env_int("GATEWAY_REUSE_PORT", 0, minimum=0, maximum=1) == 1,
            agency_tls_ca=Path(env_str("AGENCY_TLS_CA", str(cls.agency_tls_ca))),
            agency_tls_cert=Path(env_str("AGENCY_TLS_CERT", str(cls.agency_tls_cert))),
            agency_tls_key=Path(env_str("AGENCY_TLS_KEY", str(cls.agency_tls_key))),
            insecure_plaintext=plaintext_agencies,
            tls_cert=Path(env_str("GATEWAY_TLS_CERT", str(cls.tls_cert))),
            tls_key=Path(env_str("GATEWAY_TLS_KEY", str(cls.tls_key))),
            tls_ca=Path(env_str("GATEWAY_TLS_CA", str(cls.tls_ca))),
            insecure_plaintext_ports=plaintext_ports,
            audit_url=env_str("AUDIT_URL", cls.audit_url),
            audit_checkpoint_seconds=env_float(
                "AUDIT_CHECKPOINT_SECONDS", cls.audit_checkpoint_seconds, minimum=0.0, maximum=86_400.0
            ),
            audit_checkpoint_key=env_str("AUDIT_CHECKPOINT_KEY", cls.audit_checkpoint_key),
            audit_checkpoint_file=env_str("AUDIT_CHECKPOINT_FILE", cls.audit_checkpoint_file),
            batch_max_rows=env_int("BATCH_MAX_ROWS", cls.batch_max_rows, minimum=1, maximum=1_000_000),
            batch_max_upload_bytes=env_int(
                "BATCH_MAX_UPLOAD_BYTES", cls.batch_max_upload_bytes, minimum=1024, maximum=1024**3
            ),
            batch_concurrency=env_int("BATCH_CONCURRENCY", cls.batch_concurrency, minimum=1, maximum=10_000),
            answer_window_ms=env_int("ANSWER_WINDOW_MS", cls.answer_window_ms, minimum=0, maximum=86_400_000),
            late_calls_per_agency=env_int(
                "LATE_CALLS_PER_AGENCY", cls.late_calls_per_agency, minimum=0, maximum=1_000_000
            ),
        ).checked()

    def checked(self) -> "GatewaySettings":
        if 0 < self.idle_probe_seconds < 0.1:
            raise SettingsError(
                f"AGENCY_IDLE_PROBE_SECONDS={self.idle_probe_seconds}: 0 (no idle probe) or at least 0.1"
            )
        if 0 < self.hold_sync_seconds < 0.05:
            raise SettingsError(f"HOLD_SYNC_SECONDS={self.hold_sync_seconds}: 0 (no hold sync) or at least 0.05")
        if self.ledger_url and not self.ledger_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise SettingsError("LEDGER_URL: expected sqlite:///path or postgresql://user@host:port/database")
        if 0 < self.audit_checkpoint_seconds < 0.05:
            raise SettingsError(
                f"AUDIT_CHECKPOINT_SECONDS={self.audit_checkpoint_seconds}: 0 (no checkpoints) or at least 0.05"
            )
        if self.crash_at and self.crash_at not in CRASH_POINTS:
            raise SettingsError(f"CHAKONG_CRASH_AT={self.crash_at!r}: expected one of {', '.join(CRASH_POINTS)}")
        return self
