"""The records the default agency set generates for one population, and a digest of them
(tests/test_datagen.py runs `digest` in a child process too, under another hash seed).
"""

import collections
import hashlib

from services.datagen import (
    DEFAULT_BANKS,
    DEFAULT_REALESTATE_REGISTRY,
    DEFAULT_VEHICLE_REGISTRY,
    bank_accounts,
    properties,
    subjects,
    vehicles,
)


class World:
    """Everything the default agency set generates for one population."""

    def __init__(self, seed: int, count: int):
        self.population = subjects(seed, count)
        self.accounts = {
            institution_id: list(bank_accounts(seed, self.population, institution_id, name, profile))
            for institution_id, name, profile in DEFAULT_BANKS
        }
        self.vehicles = list(vehicles(seed, self.population, DEFAULT_VEHICLE_REGISTRY))
        self.properties = list(properties(seed, self.population, DEFAULT_REALESTATE_REGISTRY))

    def held(self, by_kind: bool = True) -> dict[str, set[str]]:
        """Subject ID -> agency kinds (or agency IDs) holding its assets."""
        held = collections.defaultdict(set)
        for institution_id, accounts in self.accounts.items():
            for account in accounts:
                held[account.owner_id_number].add("bank" if by_kind else institution_id)
        for vehicle in self.vehicles:
            held[vehicle.owner_id_number].add("vehicle")
        for record in self.properties:
            for owner in record.owners:
                held[owner.id_number].add("realestate")
        return held


def digest(seed: int, count: int) -> str:
    """SHA-256 over the repr of every record the default agencies generate."""
    w = World(seed, count)
    h = hashlib.sha256()
    for group in (w.population, *w.accounts.values(), w.vehicles, w.properties):
        for record in group:
            h.update(repr(record).encode())
    return h.hexdigest()
