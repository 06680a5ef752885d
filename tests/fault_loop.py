"""Run the fault loop (lost replies and gateway crashes at every point between
intent and outcome) many times on both ledger backends, then check that no
action was lost or doubled and that conservation holds.

    FAULT_LOOP_ITERATIONS=200 .venv/bin/python tests/fault_loop.py            # both backends
    FAULT_LOOP_ITERATIONS=200 .venv/bin/python tests/fault_loop.py -k sqlite  # one

Extra arguments go to pytest. CI runs the same test with 2 iterations.
"""

import os
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":
    os.environ.setdefault("FAULT_LOOP_ITERATIONS", "200")
    test = Path(__file__).with_name("test_control_faults.py")
    # No per-test timeout: 200 iterations take minutes. -s prints the figures.
    sys.exit(pytest.main([f"{test}::test_fault_loop", "-s", "-q", "-p", "no:cacheprovider", "--timeout=0",
                          *sys.argv[1:]]))
