"""The service's memory stays flat under load (issue 14, item 3).

Measured (in-process, the sample champion, 20 calls of 32 SKUs on a worker thread, as the service
runs them): resident memory rose from 632 MB to 984 MB after the first calls and then stayed there,
so it is not growth (no cache, log or queue without bound) but allocator retention. glibc gives each
thread that allocates its own arena (up to 8 per core) and keeps their freed pages; with two arenas
(``MALLOC_ARENA_MAX=2``) the same run ended at 700 MB, and ``malloc_trim`` after each call at 955 MB
(most of it was in the threads' arenas). Encoder runs of at most 8 pictures instead of 32 (setting
``serve_encode_batch``) cut the peak too (719 MB), at the same pictures/s. So the service caps the
arenas when it starts, through ``mallopt`` (what ``MALLOC_ARENA_MAX`` sets, but from inside the
process, so that every documented way to start it gets it).
"""

from __future__ import annotations

import ctypes
import logging
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter behind MALLOC_ARENA_MAX

_log = logging.getLogger("trialcast.serving")


def cap_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` (0: leave glibc's default). False where there is no
    glibc (musl, macOS): nothing to cap there."""
    if arenas <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        done = bool(libc.mallopt(M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):
        return False
    if not done:
        _log.warning("could not cap malloc arenas at %d", arenas)
    return done
