"""Test-session setup: one torch thread per test process.

`make test` runs two pytest workers (pytest-xdist: the notebook module on one, the unit tests on
the other) on a 2-core machine; torch's default of one thread per core would oversubscribe it,
and under contention two threads are many times slower than one. VTKIT_NUM_THREADS overrides.
"""
import os

import torch

torch.set_num_threads(int(os.environ.get("VTKIT_NUM_THREADS", "1")))
