"""The communication module, and the only one that imports mpi4py.

Thin verbs named after MPI: uppercase for buffers (Allreduce in place, Bcast), lowercase
for small pickled objects (allgather). At size 1 (no MPI, or not launched under MPI)
every verb is a no-op, so serial is simply size 1.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from distbp.dist.launch import LAUNCHER_SIZE_VARS, check_launcher_family, launched_under_mpi
from distbp.dist.segments import release_segment_names
from distbp.dist.watchdog import Watchdog
from distbp.errors import CollectiveError, ConfigError

T = TypeVar("T")

class SerialComm:
    """Size-1 communicator: every collective is the identity."""

    rank, size, local_rank, local_size, nodes = 0, 1, 0, 1, 1
    library = "none (serial)"
    watchdog: Watchdog | None = None

    def watch_stalls(self, timeout: float | None) -> None:
        """Abort the job if any collective waits longer than `timeout` seconds."""
        if timeout and self.size > 1 and self.watchdog is None:
            self.watchdog = Watchdog(timeout, self.rank, self.Abort)

    def set_context(self, context: str) -> None:
        """Where the program is (e.g. "step 12"), for the watchdog's report."""
        if self.watchdog is not None:
            self.watchdog.context = context

    def waiting(self, operation: str) -> contextlib.AbstractContextManager:
        """Context in which the stall watchdog times a collective."""
        return self.watchdog.around(operation) if self.watchdog else contextlib.nullcontext()

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    def Allreduce(self, buffer: np.ndarray, op: str = "sum") -> None:  # noqa: N802 - MPI verb
        """Reduce `buffer` over ranks in place: op "sum" or "max"."""

    def Bcast(self, buffer: np.ndarray, root: int = 0) -> None:  # noqa: N802
        """Overwrite `buffer` with root's."""

    def Alltoall(self, send: np.ndarray, recv: np.ndarray) -> None:  # noqa: N802
        """Block j of `send` (size/ranks elements) to rank j; recv block j from rank j."""
        np.copyto(recv, send)

    def Allgather(self, send: np.ndarray, recv: np.ndarray) -> None:  # noqa: N802
        """Every rank's `send`, concatenated in rank order, into `recv`."""
        np.copyto(recv, send)

    def allgather(self, obj: T) -> list[T]:
        """Every rank's `obj` (small, pickled), in rank order."""
        return [obj]

    def bcast(self, obj: T, root: int = 0) -> T:
        """root's `obj` (small, pickled) on every rank."""
        return obj

    def Barrier(self) -> None:  # noqa: N802
        """Wait until every rank is here."""
        pass

    def node_barrier(self) -> None:
        """Barrier among the ranks of this node."""

    def node_shared(self, count: int, dtype: object, single: bool = False) -> list[np.ndarray]:
        """Arrays in memory shared by this node's ranks: one of `count` elements per
        local rank (index = local rank), or with `single` one array for all of them."""
        return [np.zeros(count, dtype=dtype)]

    def cross_node(self) -> SerialComm:
        """The ranks with my local rank, one per node, as a communicator (ranked by node):
        what a hierarchical reduction sums over between nodes."""
        return SerialComm()

    def Abort(self, code: int = 1) -> None:  # noqa: N802
        """End every rank of the job with `code`."""
        os._exit(code)

    def agree(self, error: BaseException | None) -> None:
        """Raise CollectiveError on every rank if `error` is set on any rank."""
        messages = self.allgather(None if error is None else str(error))
        failed = [(rank, text) for rank, text in enumerate(messages) if text is not None]
        if failed:
            rank, text = failed[0]
            where = f"on rank {rank}: " if self.size > 1 else ""
            raise CollectiveError(where + text) from error

    def run_agreed(self, function: Callable[[], T]) -> T:
        """Call function on every rank; a ConfigError on any rank is raised on all."""
        try:
            result, error = function(), None
        except ConfigError as exc:
            result, error = None, exc
        self.agree(error)
        return result


def timed(verb: str) -> Callable[..., Any]:
    """An MPIComm method calling mpi4py's `verb` under the stall watchdog."""
    def call(self: MPIComm, *args: Any, **kwargs: Any) -> Any:
        with self.waiting(verb):
            return getattr(self.comm, verb)(*args, **kwargs)
    call.__doc__ = f"MPI {verb} (see SerialComm.{verb}), timed by the stall watchdog."
    return call


class MPIComm(SerialComm):
    """A wrapper over an mpi4py communicator (COMM_WORLD by default)."""

    def __init__(self, comm: Any = None, stall_timeout: float | None = None) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.watch_stalls(stall_timeout)  # from the first collective on
        with self.waiting("Split_type"):
            self.node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = self.node.Get_rank(), self.node.Get_size()
        self.node_barrier()  # every rank of the node has mapped MPICH's segment(s) by now
        if self.local_rank == 0:
            release_segment_names()
        self.windows: list[Any] = []  # shared-memory windows, kept alive with this object
        self.subcomms: list[SubComm] = []  # freed at exit with the windows (release)
        atexit.register(self.release)  # runs before mpi4py's MPI_Finalize (atexit is LIFO)
        with self.waiting("node bcast"):  # nodes as MPI sees them (ranks sharing memory),
            leader = self.node.bcast(self.rank)  # not hostnames: two containers with one
        self.nodes = len(set(self.allgather(leader)))  # hostname are still two nodes
        self.library = MPI.Get_library_version().splitlines()[0].strip()

    def Allreduce(self, buffer: np.ndarray, op: str = "sum") -> None:  # noqa: N802
        """In-place MPI Allreduce (SUM or MAX), timed by the watchdog."""
        with self.waiting("Allreduce"):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer,
                                op=self.MPI.MAX if op == "max" else self.MPI.SUM)

    # The other verbs call mpi4py's of the same name, timed by the watchdog (see SerialComm)
    Bcast = timed("Bcast")
    Alltoall = timed("Alltoall")
    Allgather = timed("Allgather")
    allgather = timed("allgather")
    bcast = timed("bcast")
    Barrier = timed("Barrier")

    def Abort(self, code: int = 1) -> None:  # noqa: N802
        """MPI_Abort (not watched: the watchdog calls it): the launcher ends every rank."""
        self.comm.Abort(code)

    def node_barrier(self) -> None:
        """MPI Barrier over this node's ranks."""
        with self.waiting("node Barrier"):
            self.node.Barrier()

    def cross_node(self) -> SerialComm:
        """Local rank r of every node, ranked by world rank (see SerialComm)."""
        with self.waiting("Split"):
            sub = SubComm(self, self.comm.Split(self.local_rank, self.rank))
        self.subcomms.append(sub)
        return sub

    def release(self) -> None:
        """Free the windows and sub-communicators at a normal exit, before MPI_Finalize:
        left alive, MPICH's OFI (TCP) netmod can fail to close ('fabricclose failed')."""
        while self.windows:
            self.windows.pop().Free()
        while self.subcomms:
            self.subcomms.pop().comm.Free()

    def node_shared(self, count: int, dtype: object, single: bool = False) -> list[np.ndarray]:
        """Arrays in an MPI-3 shared-memory window of this node (see SerialComm)."""
        itemsize = np.dtype(dtype).itemsize
        mine = 0 if single and self.local_rank else count * itemsize
        with self.waiting("shared-memory window"):
            window = self.MPI.Win.Allocate_shared(mine, itemsize, comm=self.node)
        self.windows.append(window)
        return [np.frombuffer(window.Shared_query(owner)[0], dtype=dtype, count=count)
                for owner in ([0] if single else range(self.local_size))]


class SubComm(MPIComm):
    """A sub-communicator's collectives (MPIComm's verbs), timed by its parent's watchdog."""

    def __init__(self, parent: MPIComm, comm: Any) -> None:  # noqa: D107 - no MPIComm setup
        self.parent, self.comm, self.MPI = parent, comm, parent.MPI
        self.rank, self.size, self.watchdog = comm.Get_rank(), comm.Get_size(), parent.watchdog


def world(stall_timeout: float | None = None) -> SerialComm:
    """COMM_WORLD when launched under MPI, else the serial communicator; with
    stall_timeout, a collective waiting longer than that aborts the job (watch_stalls).

    Set DISTBP_SERIAL=1 to force serial. Launched by mpirun/srun with more than one
    task but without mpi4py is an error: N copies would each think they are rank 0.
    """
    if os.environ.get("DISTBP_SERIAL") == "1" or not launched_under_mpi():
        return SerialComm()
    check_launcher_family()
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        size = next((os.environ[n] for n in LAUNCHER_SIZE_VARS if n in os.environ), "1")
        if size != "1":
            raise ConfigError(f"launched as {size} MPI tasks but mpi4py is not installed: "
                              "pip install 'distbp[mpi]'") from None
        return SerialComm()
    return MPIComm(stall_timeout=stall_timeout)


def print0(comm: SerialComm, *args: object, **kwargs: Any) -> None:
    """print on rank 0 only."""
    if comm.rank == 0:
        print(*args, **kwargs, flush=True)


def fail(comm: SerialComm, error: BaseException, code: int = 1,
         show_traceback: bool = True) -> None:
    """Print the traceback (not for bad input) and one line naming the rank and the
    error, then end every rank."""
    where = f" on rank {comm.rank} of {comm.size}" if comm.size > 1 else ""
    text = f"distbp: error{where}: {type(error).__name__}: {error}\n"
    if show_traceback and not isinstance(error, ConfigError):
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__)) + text
    sys.stdout.flush()
    os.write(2, text.encode())  # one write: nothing interleaves or is lost half-way
    if comm.size > 1:
        time.sleep(0.3)  # let the launcher forward our stderr before the abort tears it down
        comm.Abort(code)
    os._exit(code)
