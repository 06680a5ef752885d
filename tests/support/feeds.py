"""Reading a mock agency's hold changes feed over gRPC, and moving the agency's clock (CLOCK_OFFSET_FILE).

`read_all` pages through ListFreezeChanges or ListSealChanges the way a
reader does: from a cursor, page after page, until a page comes back empty.
"""

import time
from pathlib import Path

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from protos.common.v1 import common_pb2

DAY_S = 86_400


class AgencyClock:
    """An agency's test clock: real time plus the offset in seconds the
    agency reads from CLOCK_OFFSET_FILE at every call (services/agency/control.py)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset_s = 0.0
        path.write_text("0")

    @property
    def env(self) -> dict[str, str]:
        """What to start the agency with."""
        return {"CLOCK_OFFSET_FILE": str(self.path)}

    def now_us(self) -> int:
        return time.time_ns() // 1000 + int(self.offset_s * 1_000_000)

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds
        self.path.write_text(str(self.offset_s))

    def later(self, seconds: float) -> Timestamp:
        """A moment `seconds` after the agency's now."""
        us = self.now_us() + int(seconds * 1_000_000)
        return Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)


async def read_page(list_changes, after_cursor: int = 0, limit: int = 0, request_id: str = "feed") -> Message:
    """One page of a feed; `list_changes` is stub.ListFreezeChanges or stub.ListSealChanges."""
    return await list_changes(
        common_pb2.HoldChangesRequest(request_id=request_id, after_cursor=after_cursor, limit=limit), timeout=10
    )


async def read_all(list_changes, after_cursor: int = 0, limit: int = 0, max_pages: int = 100) -> tuple[list, int]:
    """Every change after `after_cursor`, page by page, and the last cursor."""
    changes: list = []
    cursor = after_cursor
    for _ in range(max_pages):
        page = await read_page(list_changes, cursor, limit)
        if not page.changes:
            assert page.last_cursor == cursor, "an empty page must leave the cursor where it was"
            return changes, cursor
        assert page.last_cursor == page.changes[-1].cursor
        changes.extend(page.changes)
        cursor = page.last_cursor
    raise AssertionError(f"the feed did not end within {max_pages} pages")


def hold_of(change: Message) -> Message:
    """The hold a FreezeChange or SealChange carries."""
    return change.freeze if change.DESCRIPTOR.name == "FreezeChange" else change.seal


def hold_id(hold: Message) -> str:
    return hold.freeze_id if hold.DESCRIPTOR.name == "AccountFreeze" else hold.seal_id
