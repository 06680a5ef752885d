"""Transfer (过户) of a sealed property to the buyer at a court sale.

Only the court holding the ACTIVE seal, in that seal's case, may ask
(`seals.active_seal_for`). In one transaction the transfer:

- ends every ACTIVE and QUEUED seal on the property as TRANSFERRED: the
  proceeds, not the property, now answer for the queued cases;
- cancels the old certificate and registers the property again under a new
  one with the buyer as sole owner (10000 bp) and no mortgages: a court sale
  discharges them (涤除), the mortgagees being paid from the proceeds. The old
  certificate's rows stay as history; it no longer answers queries, and a
  new seal on it is refused with the new certificate's number;
- registers the buyer as a holder, so a query by the buyer finds the
  property and one by the former owners does not;
- records the transfer.

New certificates are numbered 皖(<year of transfer, Beijing time>)合肥市不动产权第9nnnnnn号
from the count of transfers, skipping numbers already on the register, so
the same history always issues the same numbers.
"""

import datetime as dt
import sqlite3

import grpc

from protos.common.v1 import common_pb2
from protos.realestate.v1 import realestate_pb2
from services.agency import faults, seals
from services.agency.control import Refusal
from services.agency.store import holder, insert_holders, timestamp
from services.realestate.store import SEAL_RULES, require_current

_BEIJING = dt.timezone(dt.timedelta(hours=8))
_NEW_CERTIFICATE = "皖({year})合肥市不动产权第{seq:07d}号"
_FIRST_NEW_SEQ = 9_000_000


def transfer(
    conn: sqlite3.Connection,
    *,
    certificate_number: str,
    buyer: common_pb2.Subject,
    case_number: str,
    court_code: str,
    ruling_number: str,
    price_fen: int,
    now_us: int,
) -> realestate_pb2.PropertyTransfer:
    seals.settle(conn, SEAL_RULES, now_us)
    prop = require_current(conn, certificate_number)
    if not faults.active("transfer_by_any_court"):
        seals.active_seal_for(
            conn, SEAL_RULES, asset_id=certificate_number, court_code=court_code, case_number=case_number,
            action="transfer",
        )
    registered = holder(conn, buyer.id_number)
    if registered is not None and (registered["name"], registered["subject_type"]) != (buyer.name, buyer.type):
        raise Refusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "buyer: the name or document type does not match what is registered for this ID number"
            " (证件号码与姓名不一致)",
        )

    ended = seals.end_pending(conn, certificate_number, seals.TRANSFERRED, now_us)
    count = conn.execute("SELECT COUNT(*) FROM transfers").fetchone()[0]
    transfer_id = f"RT{count + 1:08d}"
    new_certificate = _new_certificate_number(conn, count, now_us)
    moment = dt.datetime.fromtimestamp(now_us // 1_000_000, _BEIJING)
    conn.execute(
        "INSERT INTO properties (certificate_number, unit_number, address, area_m2, use, registered_on)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (new_certificate, prop["unit_number"], prop["address"], prop["area_m2"], prop["use"],
         moment.date().isoformat()),
    )
    conn.execute(
        "INSERT INTO owners (certificate_number, position, subject_type, id_number, name, share_bp)"
        " VALUES (?, 0, ?, ?, ?, 10000)",
        (new_certificate, buyer.type, buyer.id_number, buyer.name),
    )
    insert_holders(conn, [(buyer.id_number, buyer.type, buyer.name)])
    conn.execute(
        "INSERT INTO transfers (transfer_id, certificate_number, new_certificate_number, buyer_type,"
        " buyer_id_number, buyer_name, case_number, court_code, ruling_number, price_fen, transferred_at_us)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (transfer_id, certificate_number, new_certificate, buyer.type, buyer.id_number, buyer.name,
         case_number, court_code, ruling_number, price_fen, now_us),
    )
    return realestate_pb2.PropertyTransfer(
        transfer_id=transfer_id,
        certificate_number=certificate_number,
        new_certificate_number=new_certificate,
        buyer=buyer,
        case_number=case_number,
        court_code=court_code,
        price_fen=price_fen,
        transferred_at=timestamp(now_us),
        ended_seal_ids=ended,
    )


def _new_certificate_number(conn: sqlite3.Connection, transfers_so_far: int, now_us: int) -> str:
    year = dt.datetime.fromtimestamp(now_us // 1_000_000, _BEIJING).year
    seq = _FIRST_NEW_SEQ + transfers_so_far + 1
    while True:
        number = _NEW_CERTIFICATE.format(year=year, seq=seq)
        if conn.execute("SELECT 1 FROM properties WHERE certificate_number = ?", (number,)).fetchone() is None:
            return number
        seq += 1
