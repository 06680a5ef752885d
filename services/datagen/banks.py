"""Accounts held at one bank, payment platform or securities firm."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from protos.bank.v1 import bank_pb2
from services.datagen.names import BANK_BINS, DISTRICTS
from services.datagen.population import (
    ADULT_FROM,
    COMPANY,
    COMPANY_SHARE,
    DISTRICT_OF_CODE,
    HOLD_P,
    ISO_DATES,
    LAST_DAY,
    MA_CODES_FROM,
    OLD_COMPANIES_FROM,
    RESIDENT,
    TIER_CUM,
    SubjectRecord,
    Weighted,
    day_index,
    record_factory,
)


@dataclass(frozen=True, slots=True)
class AccountRecord:
    owner_id_number: str
    account_number: str
    account_type: int
    currency: str
    balance_fen: int
    status: int
    branch: str
    opened_on: str


_new_account = record_factory(AccountRecord)

BANK_PROFILES = ("bank", "payment", "securities")

DEMAND = bank_pb2.ACCOUNT_TYPE_DEMAND_DEPOSIT
TIME = bank_pb2.ACCOUNT_TYPE_TIME_DEPOSIT
WEALTH = bank_pb2.ACCOUNT_TYPE_WEALTH_MANAGEMENT
PAYMENT = bank_pb2.ACCOUNT_TYPE_PAYMENT_BALANCE
SECURITIES = bank_pb2.ACCOUNT_TYPE_SECURITIES_CASH
NORMAL = bank_pb2.ACCOUNT_STATUS_NORMAL
DORMANT = bank_pb2.ACCOUNT_STATUS_DORMANT
CLOSED = bank_pb2.ACCOUNT_STATUS_CLOSED

# Cumulative P(holder has 1, 2, ... accounts) at one bank, by subject type
# and tier; payment platforms and securities firms open one per holder.
_BANK_COUNTS = {
    (RESIDENT, 1): (0.50, 0.85, 1.0),
    (RESIDENT, 2): (0.25, 0.60, 0.85, 1.0),
    (COMPANY, 1): (0.45, 0.80, 1.0),
    (COMPANY, 2): (0.20, 0.50, 0.80, 1.0),
}
_ONE = (1.0,)

# Accounts after the first (always a demand account, the 结算户).
_EXTRA_TYPE = {
    RESIDENT: Weighted([(TIME, 45), (WEALTH, 30), (DEMAND, 25)]),
    COMPANY: Weighted([(DEMAND, 50), (TIME, 35), (WEALTH, 15)]),
}

# Median balance in fen and lognormal sigma, for a tier-1 person.
_BALANCE = {
    DEMAND: (250_000, 1.6),
    TIME: (5_000_000, 1.0),
    WEALTH: (8_000_000, 1.0),
    PAYMENT: (30_000, 1.5),
    SECURITIES: (800_000, 1.8),
}
_COMPANY_SCALE = 15.0
_RICH_SCALE = 6.0
_BALANCE_CAP = 50_000_000_000  # ¥500 million
_ZERO_SHARE = 0.06  # settlement accounts emptied down to nothing
_CLOSED_SHARE = 0.03
_DORMANT_SHARE = 0.05  # demand accounts only (久悬)

# Earliest year an account of the profile can have been opened.
_FIRST_YEAR = {"bank": 1995, "payment": 2008, "securities": 1998}
_SERIAL_MOD = {"bank": 10**8, "payment": 10**12, "securities": 10**8}
_SECURITIES_ROADS = ("长江中路", "寿春路", "阜阳路", "金寨路", "马鞍山路", "长江西路",
                     "潜山路", "徽州大道", "芜湖路", "天鹅湖路")


def _counts(profile: str, subject_type: int, tier: int) -> tuple[float, ...]:
    return _BANK_COUNTS[subject_type, tier] if profile == "bank" else _ONE


def _mean(cum: tuple[float, ...]) -> float:
    return sum((k + 1) * (p - (cum[k - 1] if k else 0.0)) for k, p in enumerate(cum))


def accounts_population_size(target_accounts: int, profile: str = "bank") -> int:
    """Subjects to generate so that bank_accounts(...) yields about target_accounts."""
    _check_profile(profile)
    per_subject = 0.0
    for subject_type, share in ((RESIDENT, 1 - COMPANY_SHARE), (COMPANY, COMPANY_SHARE)):
        low, mid = TIER_CUM[subject_type]
        for tier, p_tier in ((1, mid - low), (2, 1 - mid)):
            per_subject += (
                share * p_tier * HOLD_P[profile][tier] * _mean(_counts(profile, subject_type, tier))
            )
    return max(1, round(target_accounts / per_subject))


def _check_profile(profile: str) -> None:
    if profile not in BANK_PROFILES:
        raise ValueError(f"profile must be one of {', '.join(BANK_PROFILES)}, not {profile!r}")


def _luhn_doubled(d: int) -> int:
    return 2 * d if d < 5 else 2 * d - 9


# Luhn contribution of four digits standing at an even index of an
# 18-digit payload (the digits at odd indices are the doubled ones).
_LUHN4 = tuple(
    (x // 1000) + _luhn_doubled(x // 100 % 10) + (x // 10 % 10) + _luhn_doubled(x % 10)
    for x in range(10_000)
)


def _luhn_prefix(prefix10: str) -> int:
    return sum(_luhn_doubled(int(c)) if i % 2 else int(c) for i, c in enumerate(prefix10))


def _bank_bin(institution_name: str, rng: random.Random) -> str:
    for keyword, card_bin in BANK_BINS:
        if keyword in institution_name:
            return card_bin
    return f"62{int(rng.random() * 10_000):04d}"


def _branches(profile: str, institution_name: str, rng: random.Random) -> list[list[tuple[str, str]]]:
    """(branch name, 4-digit branch code) per district, in DISTRICTS order."""
    r = rng.random
    codes = iter(rng.sample(range(1000, 10_000), 200))
    per_district = []
    for name, short, _, is_county, _, roads in DISTRICTS:
        if profile == "securities":
            place = short if is_county else "合肥"
            names = [f"{institution_name}{place}{road}证券营业部" for road in rng.sample(roads, 1)]
        elif is_county:
            names = [f"{institution_name}{name}支行"]
        else:
            names = [f"{institution_name}合肥{short}支行"]
            names += [f"{institution_name}合肥{road}支行" for road in rng.sample(roads, 2 + int(r() * 2))]
        per_district.append([(branch, str(next(codes))) for branch in names])
    if profile == "securities":
        # Securities firms keep most of their 营业部 downtown.
        per_district[1] += [
            (f"{institution_name}合肥{road}证券营业部", str(next(codes)))
            for road in rng.sample(_SECURITIES_ROADS, 3)
        ]
    return per_district


def bank_accounts(
    seed: int,
    population: Sequence[SubjectRecord],
    institution_id: str,
    institution_name: str,
    profile: str,
) -> Iterator[AccountRecord]:
    """Accounts the population holds at one institution; tier 0 holds none."""
    _check_profile(profile)
    rng = random.Random(f"{seed}:{institution_id}")
    r, gauss, exp = rng.random, rng.gauss, math.exp
    hold = HOLD_P[profile]
    mod = _SERIAL_MOD[profile]
    # Account k gets serial feistel(affine(k)): both steps are bijections on
    # [0, mod) (the multiplier ends in 3, so is coprime to 10; each Feistel
    # round can be undone), giving unique account numbers without a set, in
    # no visible order.
    half = math.isqrt(mod)
    mult = int(r() * (mod // 10)) * 10 + 3
    offset = int(r() * mod)
    a1, c1, a2, c2 = (int(r() * half) for _ in range(4))
    first_day = day_index(_FIRST_YEAR[profile])
    luhn4 = _LUHN4

    if profile == "bank":
        card_bin = _bank_bin(institution_name, rng)
        branches = [
            [(name, card_bin + code, _luhn_prefix(card_bin + code)) for name, code in district]
            for district in _branches(profile, institution_name, rng)
        ]
    elif profile == "securities":
        branches = [[(name, code, 0) for name, code in district]
                    for district in _branches(profile, institution_name, rng)]
    else:
        branches = [[(f"{institution_name}账户余额", "2088", 0)]] * len(DISTRICTS)
    all_branches = [b for district in branches for b in district]
    branch_weights = Weighted([(b, DISTRICTS[d][2] / len(district))
                               for d, district in enumerate(branches) for b in district])

    holder_kinds = {
        (subject_type, tier): (
            _counts(profile, subject_type, tier),
            (_COMPANY_SCALE if subject_type == COMPANY else 1.0) * (_RICH_SCALE if tier == 2 else 1.0),
            _EXTRA_TYPE[subject_type].table,
        )
        for subject_type in (RESIDENT, COMPANY)
        for tier in (1, 2)
    }
    fixed_type = PAYMENT if profile == "payment" else SECURITIES
    is_bank, is_payment = profile == "bank", profile == "payment"
    hold_cut = tuple(int(p * 2**16) for p in hold)
    closed_cut = int(_CLOSED_SHARE * 1024)
    dormant_cut = int((_CLOSED_SHARE + _DORMANT_SHARE) * 1024)
    zero_cut = int(_ZERO_SHARE * 1024)
    adult_from, district_of = ADULT_FROM, DISTRICT_OF_CODE
    n_all = len(all_branches)
    balance_params = _BALANCE
    bits = rng.getrandbits
    new_account = _new_account

    k = 0
    for subject in population:
        tier = subject.tier
        if not tier:
            continue
        # One 64-bit draw per holder and one per account, cut into fields:
        # far cheaper than a float per choice.
        b = bits(64)
        if b & 0xFFFF >= hold_cut[tier]:
            continue
        b >>= 16
        owner = subject.id_number
        subject_type = subject.subject_type
        if subject_type == RESIDENT:
            lo = adult_from[owner[6:14]]
            district = district_of.get(owner[:6], -1)
        else:
            lo = MA_CODES_FROM if owner[8:10] == "MA" else OLD_COMPANIES_FROM
            district = district_of.get(owner[2:8], -1)
        if lo < first_day:
            lo = first_day
        span = LAST_DAY - lo
        counts, scale, extra_types = holder_kinds[subject_type, tier]
        # Most people bank near home; the rest anywhere in the city.
        if district >= 0 and b & 1023 < 666:
            home = branches[district]
            branch, prefix, prefix_sum = home[(b >> 10 & 1023) % len(home)]
        else:
            branch, prefix, prefix_sum = branch_weights.table[(b >> 10 & 1023) % branch_weights.size]
        u = ((b >> 20) & 0xFFFFF) / 2**20
        n = 1
        while u >= counts[n - 1]:
            n += 1
        for i in range(n):
            b = bits(64)
            if is_bank:
                if i:
                    account_type = extra_types[(b & 1023) % len(extra_types)]
                    # Further accounts are often opened at another branch.
                    if (b >> 10) & 1023 < 307:
                        branch, prefix, prefix_sum = all_branches[(b >> 20 & 1023) % n_all]
                else:
                    account_type = DEMAND
            else:
                account_type = fixed_type
            if k >= mod:
                raise ValueError(f"{institution_id}: more accounts than account numbers")
            high, low = divmod((k * mult + offset) % mod, half)
            high = (high + (low * a1 + c1) * low) % half
            low = (low + (high * a2 + c2) * high) % half
            serial = high * half + low
            k += 1
            if is_bank:
                check = -(prefix_sum + luhn4[serial // 10_000] + luhn4[serial % 10_000]) % 10
                account_number = "%s%08d%d" % (prefix, serial, check)
            elif is_payment:
                account_number = "2088%012d" % serial
            else:
                account_number = "%s%08d" % (prefix, serial)

            u = (b >> 30) & 1023
            if u < closed_cut:
                status, balance = CLOSED, 0
            elif u < dormant_cut and account_type == DEMAND:
                # 久悬: untouched for years, a few yuan left.
                status, balance = DORMANT, int(2_000 * exp(1.2 * gauss()))
            else:
                status = NORMAL
                if (b >> 40) & 1023 < zero_cut and account_type != TIME and account_type != WEALTH:
                    balance = 0
                else:
                    median, sigma = balance_params[account_type]
                    balance = int(median * scale * exp(sigma * gauss()))
                    if balance > _BALANCE_CAP:
                        balance = _BALANCE_CAP
                    if account_type == TIME:
                        # Time deposits are placed in round thousands of yuan.
                        balance = max(1, round(balance / 100_000)) * 100_000
            yield new_account(
                owner, account_number, account_type, "CNY", balance, status, branch,
                ISO_DATES[lo + ((b >> 50) * span >> 14)],
            )
