"""Executor tokens signed with the run's key (the token_keys fixture), auth headers, the register-case body."""

import os

# The executor and court of the tests' cases; tokens default to them.
EXECUTOR = "E0001"
COURT = "340100"


def issue_token(executor: str = EXECUTOR, court: str = COURT, roles=("executor", "admin"), ttl_s: int = 3600) -> str:
    """A token signed with the run's key (token_keys); by default the tests' executor, also an admin."""
    from services.security.tokens import TokenSigner

    return TokenSigner.from_file(os.environ["CHAKONG_TOKEN_SIGNING_KEY"]).issue(executor, court, roles, ttl_s=ttl_s)


def auth_headers(token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or issue_token()}"}


def register_case_body(case: dict, debtors: list[dict], executors=(), owed_fen: int = 100_000_000) -> dict:
    body = {"case": case, "debtors": debtors, "amount_owed_fen": str(owed_fen)}
    if executors:
        body["executor_ids"] = list(executors)
    return body
