"""The service caps glibc's malloc arenas when it starts (serving/memory.py, issue 14 item 3): the
measured retention of the threads' arenas (benchmarks/load.py --allocator) is what it removes."""

from __future__ import annotations

import subprocess
import sys


def test_the_arena_cap_is_applied_where_there_is_glibc_and_skipped_when_off() -> None:
    from serving.memory import cap_malloc_arenas

    assert cap_malloc_arenas(0) is False  # 0: glibc's default, nothing done
    code = ("import threading; from serving.memory import cap_malloc_arenas; print(cap_malloc_arenas(2)); "
            "[t.start() or t.join() for t in [threading.Thread(target=lambda: bytearray(1 << 20)) for _ in range(8)]]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["True"]  # this machine's Linux has glibc: mallopt accepted the cap

