"""Every lab test starts from no lab and the session ends with a lab-down, so a failing test leaves nothing behind."""

import os

import pytest
import sysctl_guard
from labtools import lab, machine_state


@pytest.fixture(scope="session", autouse=True)
def clean_machine():
    """Start from no lab, end with no lab, and prove the machine is as it was, its sysctls included."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab("down")
    before = machine_state()
    sysctls = sysctl_guard.snapshot()
    yield before
    lab("down")
    assert machine_state() == before
    sysctl_guard.assert_unchanged(sysctls, sysctl_guard.snapshot())


def _lab_for_the_module(topology):
    """A lab up for one test module, down after its last test (also when one fails)."""

    @pytest.fixture(scope="module")
    def up():
        lab("up", topology)
        yield
        lab("down")

    return up


seed = _lab_for_the_module("seed")
kube = _lab_for_the_module("kube")


@pytest.fixture
def lab_down_after():
    yield
    lab("down")
