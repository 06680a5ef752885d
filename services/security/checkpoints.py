"""Signed checkpoints of the audit chain head, kept outside the audit store.

The hash chain shows any edit, deletion or insertion, except by whoever
can rewrite the tail and the head together, recomputing every hash: anyone
with write access to the audit database. A checkpoint closes that gap:
every `interval_s` the gateway signs the chain head (seq, hash, time) with
an Ed25519 key of its own (not the token key: a leak of either must not
forge the other) and appends it to a file outside the store, one JSON line
each, opened O_APPEND, locked and fsynced. Whoever rewrites the database
then cannot make the records at the checkpointed sequence numbers hash as
signed, and verification (`check`) names the first record after the last
checkpoint that still matches: from there on the trail cannot be trusted.

A line: {"v":1,"seq":N,"hash":"<64 hex>","at":"<UTC>","kid":"<key id>","sig":"<base64url>"},
the signature over the canonical JSON of every field but "sig". Keep the
file where the database's writers cannot rewrite it (another host,
append-only or WORM storage, or a copy shipped off the machine).
"""

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.settings import SettingsError
from services.security.audit import GENESIS_HASH, VerifyResult, canonical_json, verify_store
from services.security.tokens import key_id, write_signing_key

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
KEY_NAME = "audit-checkpoint.key"
PUBLIC_KEY_NAME = "audit-checkpoint.pub"
DEFAULT_INTERVAL_S = 60.0
# The tail read to find the last checkpoint written (a line is about 250 bytes).
_TAIL_BYTES = 4096


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    kid: str
    sig: str = ""

    def signed_fields(self) -> dict:
        return {"v": FORMAT_VERSION, "seq": self.seq, "hash": self.hash, "at": self.at, "kid": self.kid}

    def line(self) -> bytes:
        return canonical_json({**self.signed_fields(), "sig": self.sig}) + b"\n"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ensure_key(directory: Path | str) -> bool:
    """Create the checkpoint key pair in `directory` if it is not there; True if created."""
    private = Path(directory) / KEY_NAME
    if private.is_file():
        return False
    write_signing_key(private, Path(directory) / PUBLIC_KEY_NAME)
    return True


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{what} {str(path)!r}: no such file (`chakong pki init` creates it)") from None
    except OSError as exc:
        raise SettingsError(f"{what} {str(path)!r}: {exc.strerror}") from None


class CheckpointSigner:
    def __init__(self, key: Ed25519PrivateKey):
        self._key = key
        self.kid = key_id(key.public_key())

    @classmethod
    def from_file(cls, path: Path | str) -> "CheckpointSigner":
        try:
            key = serialization.load_pem_private_key(_read(path, "audit checkpoint key"), password=None)
        except ValueError:
            raise SettingsError(f"audit checkpoint key {str(path)!r}: not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SettingsError(f"audit checkpoint key {str(path)!r}: not an Ed25519 key")
        return cls(key)

    def sign(self, seq: int, head_hash: str, at: datetime | None = None) -> Checkpoint:
        moment = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        unsigned = Checkpoint(seq, head_hash, moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), self.kid)
        signature = self._key.sign(canonical_json(unsigned.signed_fields()))
        return Checkpoint(**{**unsigned.__dict__, "sig": _b64(signature)})


def load_public_keys(paths: Iterable[Path | str]) -> dict[str, Ed25519PublicKey]:
    """Key ID -> public key, for every file (the old and the new key while rotating)."""
    keys = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(_read(path, "audit checkpoint public key"))
        except ValueError:
            raise SettingsError(f"audit checkpoint public key {str(path)!r}: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SettingsError(f"audit checkpoint public key {str(path)!r}: not an Ed25519 key")
        keys[key_id(key)] = key
    return keys


class CheckpointLog:
    """The append-only file: one signed line per checkpoint; several processes may append."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def append(self, checkpoint: Checkpoint) -> bool:
        """Append unless the last line already anchors this seq (another worker did); True if written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            if self._last_seq() == checkpoint.seq:
                return False
            os.write(descriptor, checkpoint.line())
            os.fsync(descriptor)
            return True
        finally:
            os.close(descriptor)  # releases the lock

    def _last_seq(self) -> int | None:
        with contextlib.suppress(OSError), open(self.path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - _TAIL_BYTES))
            lines = file.read().splitlines()
            with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
                return int(json.loads(lines[-1])["seq"])
        return None

    def read(self) -> list[tuple[str, dict | None]]:
        """(where: file and line number, parsed line or None if unreadable), in file order."""
        out = []
        try:
            with open(self.path, "rb") as file:
                for number, raw in enumerate(file, 1):
                    if not raw.strip():
                        continue
                    try:
                        fields = json.loads(raw)
                    except ValueError:
                        fields = None
                    out.append((f"{self.path} line {number}", fields if isinstance(fields, dict) else None))
        except FileNotFoundError:
            raise SettingsError(f"audit checkpoints {str(self.path)!r}: no such file") from None
        except OSError as exc:
            raise SettingsError(f"audit checkpoints {str(self.path)!r}: {exc.strerror}") from None
        return out


@dataclass(frozen=True)
class CheckResult:
    """The chain's records against the checkpoints."""

    ok: bool
    checkpoints: int
    # The highest checkpoint that matches the store (0: none does).
    last_good_seq: int = 0
    last_good_at: str = ""
    # The first record that can no longer be trusted: the one after the last good checkpoint.
    first_untrusted_seq: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if not self.ok:
            return f"REWRITTEN after record #{self.last_good_seq}: {self.reason}"
        if not self.checkpoints:
            return "no checkpoints: the chain is checked against itself only"
        return (f"anchored: {self.checkpoints} checkpoints match, "
                f"the latest at #{self.last_good_seq} ({self.last_good_at})")


def check(lines: list[tuple[str, dict | None]], keys: dict[str, Ed25519PublicKey],
          hash_at: Callable[[int], str | None]) -> CheckResult:
    """Each checkpoint's signature, then its (seq, hash) against the store's record at that seq.

    `hash_at(seq)` is the hash the store's record at seq computes to (None if
    it has no such record). A line that is unreadable or not signed by a
    known key fails the check (the checkpoint file was altered, or another
    key signed it); a checkpoint the store no longer matches marks the
    rewrite: everything after the last checkpoint that still matches is
    untrusted.
    """
    good: list[Checkpoint] = []
    bad: list[tuple[Checkpoint, str]] = []
    for where, fields in lines:
        try:
            checkpoint = Checkpoint(int(fields["seq"]), str(fields["hash"]), str(fields["at"]), str(fields["kid"]),
                                    str(fields["sig"]))
            if fields.get("v") != FORMAT_VERSION or len(checkpoint.hash) != 64:
                raise ValueError
        except (TypeError, KeyError, ValueError):
            return CheckResult(False, len(lines), reason=f"checkpoint at {where}: unreadable")
        key = keys.get(checkpoint.kid)
        if key is None:
            return CheckResult(False, len(lines), reason=f"checkpoint at {where}: signed by an unknown key "
                               f"{checkpoint.kid!r} (pass its public key)")
        try:
            key.verify(_unb64(checkpoint.sig), canonical_json(checkpoint.signed_fields()))
        except (InvalidSignature, ValueError):
            return CheckResult(False, len(lines), reason=f"checkpoint at {where}: bad signature "
                               "(the checkpoint file was altered)")
        stored = GENESIS_HASH if checkpoint.seq == 0 else hash_at(checkpoint.seq)
        if stored == checkpoint.hash:
            good.append(checkpoint)
        elif stored is None:
            bad.append((checkpoint, f"checkpoint #{checkpoint.seq} ({checkpoint.at}) names a record the store "
                                    "no longer holds"))
        else:
            bad.append((checkpoint, f"checkpoint #{checkpoint.seq} ({checkpoint.at}) signed hash "
                                    f"{checkpoint.hash[:16]}..., the store's record #{checkpoint.seq} hashes to "
                                    f"{stored[:16]}..."))
    if bad:
        first_bad, why = min(bad, key=lambda b: b[0].seq)
        below = [c for c in good if c.seq < first_bad.seq]
        last = max(below, key=lambda c: c.seq) if below else None
        last_seq = last.seq if last else 0
        where = f"the last good checkpoint is #{last_seq} ({last.at})" if last else "no checkpoint before it matches"
        return CheckResult(
            False, len(lines), last_seq, last.at if last else "", last_seq + 1,
            f"{why}; {where}: the records from #{last_seq + 1} on were rewritten "
            f"(first record after the last good checkpoint: #{last_seq + 1})",
        )
    if not good:
        return CheckResult(True, 0)
    latest = max(good, key=lambda c: c.seq)
    return CheckResult(True, len(good), latest.seq, latest.at)


def _seq(fields: dict | None) -> int | None:
    value = fields.get("seq") if isinstance(fields, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class AnchoredResult:
    """The chain checked on its own, then against the checkpoints (None: none were given)."""

    chain: VerifyResult
    anchor: CheckResult | None

    @property
    def ok(self) -> bool:
        return self.chain.ok and (self.anchor is None or self.anchor.ok)

    @property
    def first_untrusted_seq(self) -> int | None:
        """The first record that cannot be trusted: the chain's first break, or the first after the last good
        checkpoint, whichever comes first; None when all is well."""
        found = [s for s in (self.chain.first_bad_seq, self.anchor and self.anchor.first_untrusted_seq) if s]
        return min(found) if found else None

    def __str__(self) -> str:
        return str(self.chain) if self.anchor is None else f"chain: {self.chain}\ncheckpoints: {self.anchor}"


async def verify_anchored(store_url: str, checkpoint_files: Iterable[Path | str],
                          public_keys: Iterable[Path | str]) -> AnchoredResult:
    """Verify the chain of the store at `store_url`, then each checkpoint in the files against it."""
    lines = [line for path in checkpoint_files for line in CheckpointLog(path).read()]
    keys = load_public_keys(public_keys)
    chain = await verify_store(store_url, {s for _, fields in lines if (s := _seq(fields)) is not None})
    if not chain.ok:
        # The walk stopped at the break: what lies beyond was not read, so only the checkpoints before it are checked.
        lines = [(where, f) for where, f in lines if (s := _seq(f)) is None or s < chain.first_bad_seq]
    return AnchoredResult(chain, check(lines, keys, chain.hashes.get))


class Checkpointer:
    """Every `interval_s`, sign the audit store's head and append it to the log when it moved; once more at close."""

    def __init__(self, head: Callable[[], Awaitable[tuple[int, str]]], signer: CheckpointSigner, log: CheckpointLog,
                 *, interval_s: float = DEFAULT_INTERVAL_S):
        self._head = head
        self.signer = signer
        self.log = log
        self.interval_s = interval_s
        self._last_seq: int | None = None
        self._task: asyncio.Task | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="audit checkpoints")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.checkpoint()

    async def checkpoint(self) -> Checkpoint | None:
        """Sign and append the head now if it moved since the last checkpoint; the one written, if any."""
        try:
            seq, head_hash = await self._head()
            if seq == self._last_seq or seq == 0:
                return None
            checkpoint = self.signer.sign(seq, head_hash)
            written = await asyncio.to_thread(self.log.append, checkpoint)
            self._last_seq = seq
        except Exception as exc:  # the store or the file: logged, tried again next interval
            if not self._failing:
                logger.error("audit checkpoint failed: %s", exc or type(exc).__name__)
            self._failing = True
            return None
        if self._failing:
            logger.info("audit checkpoints written again")
        self._failing = False
        return checkpoint if written else None

    async def _loop(self) -> None:
        while True:
            await self.checkpoint()
            await asyncio.sleep(self.interval_s)
