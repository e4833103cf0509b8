import pytest
from recorded import fixture_path


@pytest.fixture
def fixture_text():
    """Read a recorded fixture (real output from the lab or the seed) by its relative path."""

    def read(relative):
        with open(fixture_path(relative), encoding="utf-8") as handle:
            return handle.read()

    return read
