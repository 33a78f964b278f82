"""The parallel side: the communication module (the only mpi4py importer), the stall
watchdog, launch checks, BLAS thread policy, the one data-parallel step and its
reductions (Allreduce, shared memory within a node, hierarchical across nodes, fixed
point), evaluation."""

from distbp.dist.choose import REDUCTIONS, make_reduction, make_trainer
from distbp.dist.comm import SerialComm, print0, world
from distbp.dist.evaluate import evaluate, evaluate_exact
from distbp.dist.fixedpoint import FixedPointSum
from distbp.dist.hierarchical import HierarchicalSum
from distbp.dist.reduction import AllreduceSum, Reduction, Slot, StepResult
from distbp.dist.shared import SharedMemorySum
from distbp.dist.step import DataParallel

__all__ = ["REDUCTIONS", "AllreduceSum", "DataParallel", "FixedPointSum", "HierarchicalSum",
           "Reduction",
           "SerialComm", "SharedMemorySum", "Slot", "StepResult", "evaluate", "evaluate_exact",
           "make_reduction", "make_trainer", "print0", "world"]
