"""What the gateway's two retry loops (queries and control actions) share."""

import time

from tenacity import RetryCallState
from tenacity.stop import stop_base


class StopNearDeadline(stop_base):
    """Stop retrying when the backoff would leave less than `min_attempt_s` for another call."""

    def __init__(self, deadline: float, min_attempt_s: float):
        self.deadline = deadline
        self.min_attempt_s = min_attempt_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + retry_state.upcoming_sleep + self.min_attempt_s > self.deadline


class NoTimeLeft(Exception):
    """The deadline passed before a call could be made."""
