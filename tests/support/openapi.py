"""Strategies for the OpenAPI document's own formats (identifiers with a check character), for schemathesis."""

import random

from hypothesis import strategies as st

from services.common import identifiers
from services.datagen import population as pop


@st.composite
def resident_ids(draw) -> str:
    """GB 11643: a region and birth date that existed, and the right check character."""
    district = draw(st.integers(0, len(pop.CURRENT_REGION) - 1))
    day = draw(st.integers(pop._SPOUSE_FIRST, pop._BIRTH_LAST))
    return pop.resident_id(district, day, draw(st.integers(0, 999)))


@st.composite
def credit_codes(draw) -> str:
    return pop._credit_code(random.Random(draw(st.integers(0, 2**32))).random)


FORMATS = {"cn-resident-id": resident_ids(), "cn-credit-code": credit_codes()}


def register_formats() -> None:
    import schemathesis

    for name, strategy in FORMATS.items():
        schemathesis.openapi.format(name, strategy)


def check(value: str, name: str) -> str:
    return {"cn-resident-id": identifiers.check_resident_id, "cn-credit-code": identifiers.check_credit_code}[name](value)
