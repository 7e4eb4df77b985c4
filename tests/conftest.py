"""Test-session setup: one torch thread per test process, and the notebook modules first.

`make test` runs two pytest workers (pytest-xdist, `--dist loadfile --no-loadscope-reorder`) on a
2-core machine; torch's default of one thread per core would oversubscribe it, and under
contention two threads are many times slower than one. VTKIT_NUM_THREADS overrides.

The two notebook modules (tests/notebook_runs.py: the demo's chain, and the capacity slice with the
stages beside it) are the longest work units; collected first, xdist hands one to each worker at
the start, so the chain (about 12 minutes) has a core of its own while the other worker runs the
slice and then the unit tests.
"""
import os

import torch

torch.set_num_threads(int(os.environ.get("VTKIT_NUM_THREADS", "1")))
NOTEBOOK_MODULES = ("test_notebooks.py", "test_notebooks_side.py")   # tests/notebook_runs.py


def pytest_collection_modifyitems(config, items):
    first = {name: i for i, name in enumerate(NOTEBOOK_MODULES)}
    items.sort(key=lambda item: first.get(item.path.name, len(first)))   # stable: the rest keep their order
