"""Does MPICH progress a non-blocking Allreduce while the rank computes?

    mpirun -n 2 python scripts/overlap_probe.py
    MPIR_CVAR_ASYNC_PROGRESS=1 mpirun -n 2 python scripts/overlap_probe.py

Times, for gradient buffers of the medium and wide MLPs: the Allreduce alone, a GEMM
workload alone (about the backward pass of the step), both one after the other, and an
Iallreduce started before the GEMMs and waited for after them (what overlapping
communication with backward would do). If the overlapped time is close to the sum, the
operation did not progress in the background: overlap would not lower the exposed
communication, so distbp does not overlap.
"""

from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI
from threadpoolctl import threadpool_limits

SIZES = {"medium": 784 * 1024 + 1024 * 1024 + 1024 * 10 + 2058,
         "wide": 784 * 4096 + 4096 * 4096 + 4096 * 10 + 8202}


def median(function, repeats=7) -> float:
    times = []
    for _ in range(repeats):
        MPI.COMM_WORLD.Barrier()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    comm = MPI.COMM_WORLD
    threadpool_limits(1, "blas")
    for name, count in SIZES.items():
        grads = np.ones(count, np.float32)
        width = 1024 if name == "medium" else 4096
        a, b = np.ones((256, width), np.float32), np.ones((width, width), np.float32)
        out = np.empty((256, width), np.float32)

        def compute(a=a, b=b, out=out):
            for _ in range(3):
                np.matmul(a, b, out=out)

        def reduce(grads=grads):
            comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)

        def overlapped(grads=grads):
            request = comm.Iallreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
            compute()
            request.Wait()

        alone_reduce, alone_compute = median(reduce), median(compute)
        both, overlap = median(lambda: (compute(), reduce())), median(overlapped)
        hidden = (both - overlap) / alone_reduce if alone_reduce else 0.0
        if comm.rank == 0:
            print(f"{name:7} Allreduce {1e3 * alone_reduce:7.2f} ms  GEMMs "
                  f"{1e3 * alone_compute:7.2f} ms  sequential {1e3 * both:7.2f} ms  "
                  f"Iallreduce+GEMMs+Wait "
                  f"{1e3 * overlap:7.2f} ms  -> {hidden:.0%} of the Allreduce hidden", flush=True)


if __name__ == "__main__":
    main()
