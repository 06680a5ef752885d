"""One meaning per input: what could be read two ways is refused with 400 (or 415) naming the field,
on both ledger backends alike, before anything is looked up or recorded as an action."""

import json

import pytest

from tests.support.control import case_json, control_stack, freeze_body, new_case_number, register_body, subject_json


@pytest.fixture
async def stack(agencies, tmp_path, ledger_url):
    async with control_stack(tmp_path, agencies, ledger_url, hold_sync_seconds=0) as stack:
        yield stack


async def raw(stack, path: str, body: bytes, content_type: str = "application/json"):
    async with stack.http.session.post(path, data=body, headers={"Content-Type": content_type}) as response:
        return response.status, await response.json()


async def test_a_case_number_in_other_digits_is_not_a_second_case(stack):
    number = new_case_number()
    debtor = stack.debtor(0)
    assert (await stack.http.post("/v1/cases", register_body(number, debtor))).status == 201
    fullwidth = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    arabic_indic = number.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for spelling in (fullwidth, arabic_indic):
        reply = await stack.http.post("/v1/cases", register_body(spelling, debtor))
        assert reply.status == 400, reply.body
        assert reply.body["error"]["field"] == "case.case_number"
        assert "digits 0-9" in reply.body["error"]["message"]
        # Nor can it be used to act: the case is not found under another spelling.
        reply = await stack.http.post("/v1/freezes", freeze_body(spelling, debtor, 100))
        assert reply.status == 400, reply.body


async def test_amounts_in_other_digits_are_refused(stack):
    number = new_case_number()
    debtor = stack.debtor(1)
    await stack.http.register(number, debtor)
    for amount in ("１２", "١٢", "12 ", "+12", "1e3"):
        body = freeze_body(number, debtor, 1) | {"amount_fen": amount}
        reply = await stack.http.post("/v1/freezes", body)
        assert reply.status == 400, (amount, reply.body)
        assert reply.body["error"]["field"] == "amount_fen", (amount, reply.body)
    assert (await stack.http.case(number))["actions"] == []


async def test_a_field_given_twice_is_refused(stack):
    number = new_case_number()
    debtor = stack.debtor(2)
    await stack.http.register(number, debtor)
    body = json.dumps(freeze_body(number, debtor, 100), ensure_ascii=False)
    twice = body[:-1] + ', "amount_fen": "7"}'
    status, answer = await raw(stack, "/v1/freezes", twice.encode())
    assert (status, answer["error"]["field"]) == (400, "amount_fen")
    spelled_twice = body[:-1] + ', "amountFen": "7"}'
    status, answer = await raw(stack, "/v1/freezes", spelled_twice.encode())
    assert (status, answer["error"]["field"]) == (400, "amount_fen")
    assert "amountFen" in answer["error"]["message"]
    nested = body.replace('"court_code": "340100"', '"court_code": "340100", "courtCode": "340200"')
    status, answer = await raw(stack, "/v1/freezes", nested.encode())
    assert (status, answer["error"]["field"]) == (400, "case.court_code")
    assert (await stack.http.case(number))["actions"] == []


@pytest.mark.parametrize("text", ["x\u0000", "x\u0007y", "x\u200by", "x\u202ey"])
async def test_control_and_invisible_characters_are_refused_naming_the_field(stack, text):
    number = new_case_number()
    debtor = stack.debtor(3)
    case = case_json(number) | {"document_number": f"{number}{text}"}
    reply = await stack.http.post("/v1/cases", {"case": case, "debtors": [subject_json(debtor.subject, name=True)],
                                                "amount_owed_fen": "100"})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["field"] == "case.document_number"
    subject = subject_json(debtor.subject) | {"name": f"张{text}"}
    reply = await stack.http.post("/v1/cases", register_body(number, debtor) | {"debtors": [subject]})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["field"] == "debtors[0].name"


async def test_a_lone_surrogate_is_refused_naming_the_field(stack):
    number = new_case_number()
    debtor = stack.debtor(3)
    # json.dumps escapes every non-ASCII character, so the lone surrogate goes in as an escape too.
    body = json.dumps(register_body(number, debtor)).replace('"document_number": "', '"document_number": "\\ud800', 1)
    assert "\\ud800" in body
    status, answer = await raw(stack, "/v1/cases", body.encode())
    assert status == 400, answer
    assert answer["error"]["field"].startswith("case")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
async def test_anything_but_json_is_415(stack, content_type):
    number = new_case_number()
    body = json.dumps(register_body(number, stack.debtor(4))).encode()
    status, answer = await raw(stack, "/v1/cases", body, content_type)
    assert status == 415, answer
    assert answer["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    # The same body as JSON registers.
    status, answer = await raw(stack, "/v1/cases", body)
    assert status == 201, answer
