import os

import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.fixture
def fixture_text():
    """Read a recorded fixture (real output from the lab or the seed) by its relative path."""

    def read(relative):
        with open(os.path.join(FIXTURES, relative), encoding="utf-8") as handle:
            return handle.read()

    return read
