"""Deliberate contract violations a mock agency can be switched into: test only.

They prove that `chakong conform` catches real violations
(tests/test_conformance.py runs the kit against a mock in each fault and
expects failed cases). AGENCY_DELIBERATE_FAULTS names them, comma-separated;
the agency logs a loud warning for each at start. Never set it outside
tests: every fault breaks the law or the contract on purpose.

The switches are read where the behaviour lives (`active(name)`), not
threaded through every signature: they are a test seam, and a seam that
rewired the reference implementation would make it harder to read as one.
"""

import logging
import os

from services.common.settings import SettingsError

logger = logging.getLogger(__name__)

# name -> what the agency then does wrong.
FAULTS: dict[str, str] = {
    "replay_applies_twice": "a retry with the same key and request takes effect again (a deduction twice)",
    "key_reuse_accepted": "the same key with another request is carried out instead of refused ALREADY_EXISTS",
    "refusal_not_stored": "refusals are not recorded under the key: a retry may succeed where the first was refused",
    "invalid_argument_stored": "INVALID_ARGUMENT is recorded under the key, so the corrected request is refused",
    "renew_past_period": "a renewal may go past the statutory period (one year for a freeze)",
    "queue_order_ignored": "queued holds take effect newest first instead of in registration order",
    "period_from_registration": "a queued hold's period runs from registration instead of from when it takes effect",
    "available_ignores_frozen": "queries report available = balance, ignoring what is frozen",
    "health_service_name_only": "health is reported for the service name only, not for the empty service name",
    "not_found_as_failed_precondition": "an unknown freeze or seal is answered FAILED_PRECONDITION, not NOT_FOUND",
    "duplicate_hold_accepted": "a second pending freeze or seal of one case on one asset is accepted",
    "no_shortfall": "a freeze holds the whole amount asked for even when less is available",
    "deduct_beyond_freeze": "a deduction may take more than the freeze holds",
    "transfer_by_any_court": "a property is transferred for any court, not only the one holding the active seal",
    "any_client_allowed": "any client certificate from the CA may call, not only the gateway's",
    "name_mismatch_ignored": "a query whose name differs from the registered holder's is answered",
    "no_item_cap": "a query answers more than 1,000 items",
    "lapse_not_applied": "holds past their expiry stay active",
    "freeze_reply_without_id": "a freeze is answered without freeze_id",
}

_active: frozenset[str] = frozenset()


def parse(value: str) -> frozenset[str]:
    """AGENCY_DELIBERATE_FAULTS: known names, comma-separated."""
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - FAULTS.keys())
    if unknown:
        raise SettingsError(
            f"AGENCY_DELIBERATE_FAULTS: unknown fault {unknown[0]!r}; expected some of {', '.join(sorted(FAULTS))}"
        )
    return names


def from_env() -> frozenset[str]:
    return parse(os.environ.get("AGENCY_DELIBERATE_FAULTS", ""))


def activate(names: frozenset[str]) -> None:
    """Switch the process into `names` (empty: behave)."""
    global _active
    _active = frozenset(names)
    for name in sorted(_active):
        logger.critical("TEST ONLY: deliberate fault %s: %s. Never set AGENCY_DELIBERATE_FAULTS outside tests.",
                        name, FAULTS[name])


def active(name: str) -> bool:
    return name in _active
