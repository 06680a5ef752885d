"""Console sessions, kept in this process's memory: the officer's token never reaches the browser.

The browser holds only a random session ID in a cookie (HttpOnly,
SameSite=Strict, Secure under TLS). Every session, signed in or not, has
its own CSRF token that every state-changing form sends back. A query
stream is opened by a POST that leaves a one-time ticket in the session
(the browser's EventSource can only GET). Restarting the console signs
everyone out.
"""

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import jwt

COOKIE = "chakong_console"
MAX_SESSIONS = 10_000
ANONYMOUS_TTL_S = 3600
TICKET_TTL_S = 60
MAX_TICKETS = 16


@dataclass(frozen=True)
class Officer:
    """Who a session speaks for, as the token's claims say (the gateway verifies the token itself)."""

    executor_id: str
    court_code: str
    roles: frozenset[str]
    expires_at: float

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @classmethod
    def from_token(cls, token: str) -> "Officer":
        """The token's claims, read without verifying: ValueError names what is missing."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ValueError("不是有效的令牌 Not a token (expected a JWT from `chakong token issue`)") from None
        sub, court, roles, exp = claims.get("sub"), claims.get("court"), claims.get("roles"), claims.get("exp")
        if not (isinstance(sub, str) and isinstance(court, str) and isinstance(roles, list)
                and isinstance(exp, (int, float))):
            raise ValueError("令牌缺少声明 The token lacks its sub, court, roles or exp claim")
        return cls(sub, court, frozenset(r for r in roles if isinstance(r, str)), float(exp))


@dataclass
class Ticket:
    """One query stream the officer asked for by POST: what to send the gateway."""

    case_number: str
    debtor_index: int
    body: dict
    made_at: float = field(default_factory=time.monotonic)


@dataclass
class Session:
    id: str
    csrf: str
    expires_at: float
    officer: Officer | None = None
    token: str = field(default="", repr=False)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    # One message for the next page (after a redirect): (kind, text).
    flash: tuple[str, str] | None = None

    def csrf_ok(self, sent: str) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), sent.encode())

    def new_ticket(self, ticket: Ticket) -> str:
        now = time.monotonic()
        for key in [k for k, t in self.tickets.items() if now - t.made_at > TICKET_TTL_S]:
            del self.tickets[key]
        while len(self.tickets) >= MAX_TICKETS:
            self.tickets.pop(next(iter(self.tickets)))
        key = secrets.token_urlsafe(24)
        self.tickets[key] = ticket
        return key

    def take_ticket(self, key: str) -> Ticket | None:
        ticket = self.tickets.pop(key, None)
        if ticket is None or time.monotonic() - ticket.made_at > TICKET_TTL_S:
            return None
        return ticket


class Sessions:
    def __init__(self, clock=time.time):
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._clock = clock

    def new(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock() + ANONYMOUS_TTL_S)
        self._sessions[session.id] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session_id]
            return None
        self._sessions.move_to_end(session_id)
        return session

    def sign_in(self, session: Session, token: str, officer: Officer, max_hours: int) -> Session:
        """A fresh session ID for the signed-in officer (no fixation: the old ID stops working)."""
        self._sessions.pop(session.id, None)
        fresh = self.new()
        fresh.token, fresh.officer = token, officer
        fresh.expires_at = min(officer.expires_at, self._clock() + max_hours * 3600)
        return fresh

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
