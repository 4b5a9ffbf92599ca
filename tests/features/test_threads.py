"""One place sets every pool's thread budget from the settings (features/threads.py)."""

from __future__ import annotations

import subprocess
import sys

from features.config import Settings
from features.threads import apply


def test_apply_caps_every_loaded_pool(monkeypatch) -> None:
    import numpy  # noqa: F401  (loads BLAS)
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    before = torch.get_num_threads()
    with threadpool_limits():  # restores the pools afterwards
        torch.set_num_threads(2)
        assert apply(Settings(threads=1)) == 1
        pools = threadpool_info()
        assert pools and all(pool["num_threads"] == 1 for pool in pools)
        assert torch.get_num_threads() == 1
    torch.set_num_threads(before)


def test_apply_never_imports_torch_and_sets_the_environment_for_later_pools() -> None:
    code = ("import os, sys; os.environ.pop('OMP_NUM_THREADS', None)\n"
            "from features.config import Settings; from features.threads import apply\n"
            "apply(Settings(threads=1))\n"
            "print('torch' in sys.modules, os.environ['OMP_NUM_THREADS'], os.environ['OMP_WAIT_POLICY'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "1", "PASSIVE"]
