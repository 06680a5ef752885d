"""The console's settings from the environment; a malformed value stops the start with its name."""

import os
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import SettingsError, env_address, env_int, env_str


@dataclass(frozen=True)
class DemoOfficer:
    """An officer the console can sign in as where the development signing key is (never in production)."""

    executor_id: str
    court_code: str
    roles: tuple[str, ...]
    label: str


# The launcher's demo case is court 340100's, with E0001 assigned and A0001 its admin;
# the other two show what an officer who may not see it gets.
DEMO_OFFICERS = (
    DemoOfficer("E0001", "340100", ("executor",), "执行干警 Executor (demo case)"),
    DemoOfficer("A0001", "340100", ("admin", "executor"), "法院管理员 Court admin"),
    DemoOfficer("AP0001", "340100", ("approver",), "审批干警 Approver (four eyes)"),
    DemoOfficer("E0002", "340100", ("executor",), "未分配的执行干警 Executor not assigned"),
    DemoOfficer("E0201", "340200", ("executor",), "外院执行干警 Executor of another court"),
)

# Where deductions go, prefilled in the deduct form (the officer may change them).
COURT_ACCOUNTS = {
    "340100": ("中国工商银行合肥分行", "1302010109024588811", "合肥市中级人民法院"),
}


@dataclass(frozen=True)
class ConsoleSettings:
    http_address: str = "127.0.0.1:8090"
    # The gateway's HTTP API: http:// or https:// (with gateway_ca to check its certificate).
    gateway_url: str = "http://127.0.0.1:8080"
    gateway_ca: str = ""
    # The development token signing key: demo sign-in is offered only when this file exists.
    dev_signing_key: Path = Path("var/pki/token-signing.key")
    # TLS for the console itself; with it the session cookie is Secure.
    tls_cert: str = ""
    tls_key: str = ""
    # A session lives as long as its token, at most this long.
    session_hours: int = 8
    grace_seconds: float = 2.0

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def demo_sign_in(self) -> bool:
        return self.dev_signing_key.is_file()

    @classmethod
    def from_env(cls) -> "ConsoleSettings":
        gateway_url = env_str("CONSOLE_GATEWAY_URL", cls.gateway_url).rstrip("/")
        if not gateway_url.startswith(("http://", "https://")):
            raise SettingsError(f"CONSOLE_GATEWAY_URL: {gateway_url!r} must start with http:// or https://")
        tls_cert, tls_key = env_str("CONSOLE_TLS_CERT", ""), env_str("CONSOLE_TLS_KEY", "")
        if bool(tls_cert) != bool(tls_key):
            raise SettingsError("CONSOLE_TLS_CERT and CONSOLE_TLS_KEY: set both or neither")
        key = os.environ.get("CONSOLE_DEV_SIGNING_KEY") or os.environ.get("CHAKONG_TOKEN_SIGNING_KEY") \
            or str(cls.dev_signing_key)
        return cls(
            http_address=env_address("CONSOLE_HTTP_ADDRESS", cls.http_address),
            gateway_url=gateway_url,
            gateway_ca=env_str("CONSOLE_GATEWAY_CA", ""),
            dev_signing_key=Path(key),
            tls_cert=tls_cert,
            tls_key=tls_key,
            session_hours=env_int("CONSOLE_SESSION_HOURS", cls.session_hours, minimum=1, maximum=24),
        )
