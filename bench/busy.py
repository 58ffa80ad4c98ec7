"""A spinning process that holds one core while a measurement runs (for `compare_llamacpp.py --busy`).

    from busy import busy_core
    with busy_core():          # starts `python -c 'while True: pass'`, stops it on exit, error or Ctrl-C
        measure()

    python bench/busy.py 30    # stand-alone: spin for 30 s (0 = until Ctrl-C)

The spinner runs at normal priority and is not pinned: it competes like any other busy process.
On Linux it also gets PR_SET_PDEATHSIG, so it dies if the parent is killed before it can clean up.
"""
from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time

SPIN = "while True: pass"


def _die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGKILL the child when its parent exits (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass


def start_spinner() -> subprocess.Popen:
    kw = {"preexec_fn": _die_with_parent} if sys.platform.startswith("linux") else {}
    return subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL, **kw)


def stop_spinner(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()


@contextlib.contextmanager
def busy_core(settle_s: float = 0.5):
    """Hold one core with a spinning process for the duration of the block."""
    p = start_spinner()
    try:
        time.sleep(settle_s)  # let it get scheduled before the first timed call
        if p.poll() is not None:
            raise RuntimeError(f"busy spinner exited at once (rc {p.returncode})")
        yield p
    finally:
        stop_spinner(p)


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    with busy_core():
        try:
            if seconds > 0:
                time.sleep(seconds)
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
