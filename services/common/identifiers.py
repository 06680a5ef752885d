"""Checks and check characters for the identifiers courts and agencies use."""

import functools
import re

from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc


class InvalidIdentifier(ValueError):
    """The identifier breaks a rule; the message says which."""


def check_resident_id(value: str) -> str:
    """Validate a GB 11643 resident ID (format, birth date, region, check character)."""
    if len(value) != 18:
        raise InvalidIdentifier("must be 18 characters")
    if not (value[:17].isascii() and value[:17].isdigit()) or not (value[17] in "0123456789X"):
        raise InvalidIdentifier("must be 17 digits followed by a digit or X")
    if value[17] != ric.calc_check_digit(value):
        raise InvalidIdentifier("check character does not match (ISO 7064 MOD 11-2)")
    try:
        ric.get_birth_date(value)
    except stdnum_errors.InvalidComponent:
        raise InvalidIdentifier("birth date or region code is not valid") from None
    if not _region_valid_in(value[:10]):
        raise InvalidIdentifier("birth date or region code is not valid")
    return value


@functools.lru_cache(maxsize=8192)
def _region_valid_in(region_and_year: str) -> bool:
    """Whether the 6-digit region code existed in the birth year (stdnum's
    register). The register lookup costs about 0.1 ms and IDs on the query
    path share few regions, so answers are remembered."""
    try:
        ric.get_birth_place(region_and_year + "0101" + "0000")
    except stdnum_errors.InvalidComponent:
        return False
    except KeyError:
        # stdnum fails this way on codes of a province or city, which are
        # not county-level codes an ID can carry.
        return False
    return True


def resident_id_check_char(first17: str) -> str:
    return ric.calc_check_digit(first17 + "0")


def check_credit_code(value: str) -> str:
    """Validate a GB 32100 unified social credit code (alphabet and MOD 31 check)."""
    if len(value) != 18:
        raise InvalidIdentifier("must be 18 characters")
    try:
        uscc.validate(value)
    except stdnum_errors.InvalidChecksum:
        raise InvalidIdentifier("check character does not match (GB 32100 MOD 31)") from None
    except stdnum_errors.ValidationError:
        raise InvalidIdentifier(
            "must be 8 digits then characters from 0-9 and A-Y without I, O, S, V, Z"
        ) from None
    return value


def credit_code_check_char(first17: str) -> str:
    return uscc.calc_check_digit(first17 + "0")


_PASSPORT = re.compile(r"[A-Z0-9]{5,17}")


def check_passport(value: str) -> str:
    if not _PASSPORT.fullmatch(value):
        raise InvalidIdentifier("must be 5 to 17 upper-case letters or digits")
    return value


# 皖A plus 5 characters (ordinary) or 6 with D or F first or last (new
# energy); I and O never appear.
_PLATE_ORDINARY = re.compile(r"皖A[A-HJ-NP-Z0-9]{5}")
_PLATE_NEW_ENERGY = re.compile(r"皖A(?:[DF][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF])")


def check_plate(value: str) -> str:
    if not (_PLATE_ORDINARY.fullmatch(value) or _PLATE_NEW_ENERGY.fullmatch(value)):
        raise InvalidIdentifier(
            "must be 皖A then 5 characters, or 6 for new energy with D or F first or last;"
            " no I or O"
        )
    return value


# (2024)皖01执123号, with optional district digits and suffixes such as 执恢
# or 执保; full-width brackets are accepted as courts write them either way.
# ASCII digits only ([0-9], not \d, which takes every script's digits): one
# case has one spelling, so it cannot be registered twice as (２０２６)… or
# (٢٠٢٦)… and have its seizure cap counted twice.
_CASE_NUMBER = re.compile(r"[(（]([0-9]{4})[)）][\u4e00-\u9fff][0-9]{2,4}执[恢保异复]?([0-9]{1,6})号")


def normal_case_number(value: str) -> str:
    """Courts write case numbers with ASCII or full-width brackets: one case."""
    return value.strip().replace("（", "(").replace("）", ")")


def case_number_spellings(value: str) -> tuple[str, ...]:
    """Every way of writing the case number's brackets, each ASCII or full
    width: what a look-up of a case's records must match, since a court may
    have written either. The normal form comes first."""
    spellings = [""]
    for char in normal_case_number(value):
        forms = {"(": "(（", ")": ")）"}.get(char, char)
        spellings = [s + form for s in spellings for form in forms]
    return tuple(spellings)


def check_case_number(value: str) -> str:
    if not _CASE_NUMBER.fullmatch(value):
        if any(c.isdigit() and not c.isascii() for c in value):
            raise InvalidIdentifier("must be written with the digits 0-9, like (2024)皖01执123号")
        raise InvalidIdentifier("must look like (2024)皖01执123号")
    return value
