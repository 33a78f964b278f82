"""One fingerprint, one comparison (distbp.dist.agreement): across ranks (MPI suite, see
test_step) and against a checkpoint."""

import pytest

from distbp.dist.agreement import check_same_everywhere, describe, differences
from distbp.dist.comm import world
from distbp.errors import CollectiveError


@pytest.fixture(scope="module")
def comm():
    return world()


@pytest.mark.mpi
def test_mismatched_configuration_fails_on_every_rank(comm):
    fingerprint = {"seed": 1, "batch_size": 64 + comm.rank % 2}
    if comm.size == 1:
        check_same_everywhere(comm, fingerprint)  # nothing to differ from
        return
    odd = ", ".join(str(r) for r in range(1, comm.size, 2))
    with pytest.raises(CollectiveError, match=rf"configuration differs across ranks: "
                                              rf"'batch_size' is 64 on rank 0 but 65 on "
                                              rf"rank\(s\) {odd}$"):
        check_same_everywhere(comm, fingerprint)


def test_differences_name_the_field_and_both_values():
    saved = describe({"seed": 1, "model": ["Dense(2, 3)"]})
    mine = describe({"seed": 2, "model": ["Dense(2, 3)"], "new": True})
    assert differences([saved, mine], "the checkpoint", lambda _: "this run") == [
        "'new' is None on the checkpoint but True on this run",
        "'seed' is 1 on the checkpoint but 2 on this run"]
    assert differences([saved, dict(saved)], "a", lambda _: "b") == []
