"""Tests run under MPI: ``mpiexec -n N python -m pytest tests/mpi`` (tests/test_distributed_mpi.py
launches them with N = 2 and 3). Every test is collective: all ranks run the same tests in
the same order, make their collective calls first and assert afterwards, so that a failing
assertion on one rank cannot leave another waiting in a collective call.

Outside an MPI launcher (a plain ``pytest`` run) the files here are not collected.
"""

import os

import pytest

LAUNCHED = any(v in os.environ for v in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"))
collect_ignore_glob = [] if LAUNCHED else ["test_*.py"]


@pytest.fixture(scope="session")
def comm():
    from mpi4py import MPI

    return MPI.COMM_WORLD
