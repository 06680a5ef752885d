"""Statutory periods of freezes and seals, and calendar arithmetic on them.

最高人民法院关于人民法院民事执行中查封、扣押、冻结财产的规定 (2020) 第二十九条:
bank funds at most 1 year, movable property (vehicles) 2, real estate 3;
each renewal at most the same period. Shared by the agencies, which enforce
them, and the gateway, which fills in defaults.
"""

import calendar
import datetime as dt

BANK_FREEZE_YEARS = 1
VEHICLE_SEAL_YEARS = 2
REALESTATE_SEAL_YEARS = 3


def add_years(us: int, years: int) -> int:
    """The same calendar moment `years` later (29 February becomes 28 February)."""
    moment = dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC)
    year = moment.year + years
    day = min(moment.day, calendar.monthrange(year, moment.month)[1])
    later = moment.replace(year=year, day=day)
    return int(later.timestamp()) * 1_000_000 + us % 1_000_000
