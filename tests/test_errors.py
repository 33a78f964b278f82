"""The errors distbp raises on purpose (distbp.errors)."""

import pytest

from distbp.errors import CollectiveError, ConfigError, check


def test_check_raises_one_config_error():
    check(True, "never")
    with pytest.raises(ConfigError, match="^--lr must be > 0$"):
        check(False, "--lr must be > 0")
    assert issubclass(CollectiveError, ConfigError) and issubclass(ConfigError, ValueError)
