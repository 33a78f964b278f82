"""BLAS thread policy (distbp.dist.threads)."""

from distbp.dist.threads import auto_threads, set_blas_threads


def test_blas_threads_are_shared_among_local_ranks():
    assert auto_threads(local_ranks=4, cores=2) == 1
    assert auto_threads(local_ranks=2, cores=2) == 1
    assert auto_threads(local_ranks=2, cores=8) == 4
    assert auto_threads(local_ranks=1, cores=8) == 8


def test_set_blas_threads_describes_what_runs():
    text = set_blas_threads(1)
    assert "1 thread(s)" in text or text.startswith(("unknown BLAS", "no BLAS"))
