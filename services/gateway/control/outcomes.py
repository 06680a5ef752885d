"""How an agency's answer to a control action changes the ledger's holds, and the money it moved."""

import dataclasses

from google.protobuf.message import Message

from protos.bank.v1 import bank_pb2
from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2
from services.gateway.agencies.clients import AgencyClients
from services.gateway.control.messages import DEDUCT, FREEZE, SEAL, timestamp_us, to_json
from services.gateway.access.labels import COURTS
from services.gateway.control.metrics import DEDUCTED_FEN, FROZEN_FEN
from services.gateway.ledger import ActionRecord, HoldChange, HoldRecord, HoldUpdate



def hold_change(record: ActionRecord, response: Message, clients: AgencyClients) -> HoldChange | None:
    if isinstance(response, bank_pb2.Deduction):
        # A direct deduction's freeze ended at once; it is no hold of ours.
        return HoldChange(update=freeze_update(record.hold_id, response.freeze)) if record.hold_id else None
    if isinstance(response, realestate_pb2.PropertyTransfer):
        return HoldChange(transferred=(record.agency_id, tuple(response.ended_seal_ids)))
    if record.kind in (FREEZE, SEAL):
        client = clients.by_id.get(record.agency_id)
        agency_kind = client.config.kind if client else record.agency_method.split(".")[0]
        update = (
            freeze_update(record.action_id, response) if record.kind == FREEZE
            else seal_update(record.action_id, response)
        )
        return HoldChange(insert=HoldRecord(
            hold_id=record.action_id, case_number=record.case_number,
            hold_kind="freeze" if record.kind == FREEZE else "seal", agency_id=record.agency_id,
            agency_kind=agency_kind,
            agency_hold_id=response.freeze_id if record.kind == FREEZE else response.seal_id,
            asset_id=record.asset_id, subject_type=record.subject_type, subject_id=record.subject_id,
            subject_name=record.subject_name, created_at_us=record.created_at_us,
            updated_at_us=record.created_at_us,
            **{f.name: getattr(update, f.name) for f in dataclasses.fields(HoldUpdate) if f.name != "hold_id"},
        ))
    if isinstance(response, bank_pb2.AccountFreeze):
        return HoldChange(update=freeze_update(record.hold_id, response))
    return HoldChange(update=seal_update(record.hold_id, response))


def freeze_update(hold_id: str, freeze: bank_pb2.AccountFreeze) -> HoldUpdate:
    return HoldUpdate(
        hold_id=hold_id, state=freeze.state, requested_fen=freeze.requested_fen, frozen_fen=freeze.frozen_fen,
        deducted_fen=freeze.deducted_fen, shortfall_fen=freeze.shortfall_fen,
        expires_at_us=timestamp_us(freeze.expires_at), detail=to_json(freeze),
    )


def seal_update(hold_id: str, seal: common_pb2.Seal) -> HoldUpdate:
    return HoldUpdate(
        hold_id=hold_id, state=seal.state, requested_fen=0, frozen_fen=0, deducted_fen=0, shortfall_fen=0,
        expires_at_us=timestamp_us(seal.expires_at), detail=to_json(seal),
    )


def count_money(record: ActionRecord, response: Message) -> None:
    if record.kind == FREEZE:
        FROZEN_FEN.labels(COURTS.label(record.court_code)).inc(response.frozen_fen)
    elif record.kind == DEDUCT:
        DEDUCTED_FEN.labels(COURTS.label(record.court_code)).inc(response.amount_fen)

