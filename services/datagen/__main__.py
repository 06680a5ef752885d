"""Print what a seed generates: counts per agency and the showcase subjects."""

from __future__ import annotations

import argparse
import collections
import time

from services.datagen import (
    DEFAULT_BANKS,
    DEFAULT_REALESTATE_REGISTRY,
    DEFAULT_VEHICLE_REGISTRY,
    bank_accounts,
    properties,
    showcase,
    subjects,
    vehicles,
)
from services.datagen.population import COMPANY


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.datagen", description=__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--subjects", type=int, default=10_000, help="population size")
    parser.add_argument("--show", type=int, default=5, help="showcase subjects to list")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    population = subjects(args.seed, args.subjects)
    kinds = collections.Counter(
        ("company" if s.subject_type == COMPANY else "person", s.tier) for s in population
    )
    print(f"subjects: {len(population)}")
    for kind in ("person", "company"):
        tiers = ", ".join(f"tier {t}: {kinds[kind, t]}" for t in range(3))
        print(f"  {kind:<10}{sum(kinds[kind, t] for t in range(3)):>9}  ({tiers})")

    holdings: dict[str, set[str]] = collections.defaultdict(set)
    print("accounts:")
    for institution_id, name, profile in DEFAULT_BANKS:
        count = 0
        for account in bank_accounts(args.seed, population, institution_id, name, profile):
            count += 1
            holdings[account.owner_id_number].add(profile)
        print(f"  {institution_id:<10}{count:>9}  {name} ({profile})")
    count = 0
    for vehicle in vehicles(args.seed, population, DEFAULT_VEHICLE_REGISTRY):
        count += 1
        holdings[vehicle.owner_id_number].add("vehicle")
    print(f"vehicles:   {count:>9}  {DEFAULT_VEHICLE_REGISTRY}")
    count = 0
    for record in properties(args.seed, population, DEFAULT_REALESTATE_REGISTRY):
        count += 1
        holdings[record.owners[0].id_number].add("realestate")
    print(f"properties: {count:>9}  {DEFAULT_REALESTATE_REGISTRY}")
    print(f"generated in {time.perf_counter() - started:.2f} s")

    print("showcase:")
    for subject in showcase(population, args.show):
        kinds_held = ", ".join(sorted(holdings[subject.id_number]))
        print(f"  {subject.id_number}  {subject.name}  [{kinds_held}]")


if __name__ == "__main__":
    main()
