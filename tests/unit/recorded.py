"""Where the recorded output lives: real output from the lab or the seed, never invented lines."""

import os

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: schemas/


def fixture_path(*parts):
    return os.path.join(FIXTURES, *parts)
