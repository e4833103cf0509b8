"""Where a member of a kernel struct lies, read from BTF as a compiler wrote it (GCC -gbtf, the fixture's README)."""

import pytest
from recorded import fixture_path

from ansible_collections.packetpath.linux.plugins.module_utils.capture.kernel_types import KernelTypes, KernelTypesError


@pytest.fixture(name="types")
def types_fixture():
    return KernelTypes.of_running_kernel(fixture_path("kernel_types/layout.btf"))


def test_members_inside_anonymous_unions_and_typedefs_are_found_where_c_puts_them(types):
    assert types.member("sk_buff", ("dev",)) == (16, 8)  # union { struct { next; prev; union { dev; }; }; }
    assert types.member("sk_buff", ("network_header",)) == (26, 2)  # after a one-byte bit field
    assert types.member("sk_buff", ("head",)) == (32, 8)
    assert types.member("net_device", ("nd_net", "net")) == (16, 8)  # possible_net_t is a typedef'd struct
    assert types.member("net", ("ns", "inum")) == (4, 4)
    assert types.member("net_device", ("ifindex",)) == (24, 4)


@pytest.mark.parametrize("struct_name, path, message", [
    ("sk_buff", ("flag",), "sk_buff.flag is a bit field"),
    ("sk_buff", ("nope",), "struct sk_buff has no member nope"),
    ("net", ("ns", "level"), "struct net has no member ns.level"),
    ("sock", ("sk_net",), "the kernel has no struct sock"),
    ("ns_commo", ("inum",), "the kernel has no struct ns_commo"),  # a name that is only part of one
])
def test_what_is_not_there_is_said_not_guessed(types, struct_name, path, message):
    with pytest.raises(KernelTypesError, match="^%s$" % message):
        types.member(struct_name, path)


def test_a_file_that_is_not_btf_or_not_there_is_refused(tmp_path):
    source = fixture_path("kernel_types/layout.c")
    with pytest.raises(KernelTypesError, match="not BTF"):
        KernelTypes.of_running_kernel(source)
    with pytest.raises(KernelTypesError, match="cannot read .*absent"):
        KernelTypes.of_running_kernel(str(tmp_path / "absent"))
