"""Does MPICH progress a non-blocking Allreduce while the rank computes?

    mpirun -n 2 python scripts/overlap_probe.py
    MPIR_CVAR_ASYNC_PROGRESS=1 mpirun -n 2 python scripts/overlap_probe.py

Times, for gradient buffers of the medium and wide MLPs: the Allreduce alone, a GEMM
workload alone (about the backward pass of the step), both one after the other, and an
Iallreduce started before the GEMMs and waited for after them (what overlapping
communication with backward would do). If the overlapped time is close to the sum, the
operation did not progress in the background: overlap would not lower the exposed
communication, so distbp does not overlap. Two more ways are timed: the Iallreduce
polled (MPI_Test) between the GEMMs, as a step would between layers, and a blocking
Allreduce on a communication thread (mpi4py initialises MPI_THREAD_MULTIPLE).

Across nodes (cluster/local-cluster.sh up 2 --rate 1gbit):
    cluster/local-cluster.sh mpiexec -n 2 -ppn 1 python scripts/overlap_probe.py
"""

from __future__ import annotations

import threading
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

        def polled(grads=grads, a=a, b=b, out=out):
            request = comm.Iallreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
            for _ in range(3):
                np.matmul(a, b, out=out)
                request.Test()
            request.Wait()

        def threaded():
            thread = threading.Thread(target=reduce)
            thread.start()
            compute()
            thread.join()

        alone_reduce, alone_compute = median(reduce), median(compute)
        both = median(lambda: (compute(), reduce()))
        if comm.rank == 0:
            print(f"{name:7} Allreduce {1e3 * alone_reduce:7.2f} ms  GEMMs "
                  f"{1e3 * alone_compute:7.2f} ms  sequential {1e3 * both:7.2f} ms", flush=True)
        for label, function in (("Iallreduce+GEMMs+Wait", overlapped),
                                ("Iallreduce, Test between GEMMs", polled),
                                ("Allreduce on a thread", threaded)):
            overlap = median(function)
            hidden = (both - overlap) / alone_reduce if alone_reduce else 0.0
            if comm.rank == 0:
                print(f"        {label:31} {1e3 * overlap:7.2f} ms -> {hidden:4.0%} of the "
                      "Allreduce hidden", flush=True)


if __name__ == "__main__":
    main()
