"""Clocks: the real one, and the ones tests move (in process, or across processes through a file)."""

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)


class Clock(Protocol):
    def now_us(self) -> int:
        """Microseconds since the Unix epoch, UTC."""


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000


@dataclass
class ManualClock:
    """A clock tests set and advance; for in-process tests."""

    now: int

    def now_us(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


class OffsetFileClock:
    """Real time plus an offset in seconds read from a file at every call.

    Tests of agencies running as separate processes move their time forward
    by writing a larger offset (CLOCK_OFFSET_FILE); never set in production.
    """

    def __init__(self, path: Path):
        self.path = path

    def now_us(self) -> int:
        try:
            offset = float(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            offset = 0.0
        return time.time_ns() // 1000 + int(offset * 1_000_000)


def clock_from_env() -> Clock:
    path = os.environ.get("CLOCK_OFFSET_FILE")
    if path:
        logger.warning("test clock: time is shifted by the offset in %s", path)
        return OffsetFileClock(Path(path))
    return SystemClock()
