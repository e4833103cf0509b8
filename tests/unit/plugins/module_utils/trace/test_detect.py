import pytest

from ansible_collections.packetpath.linux.plugins.module_utils.trace.detect import parse_iptables_version


@pytest.mark.parametrize(
    "fixture, version, backend",
    [
        ("iptables-version/iptables-1.8.9-legacy.txt", "1.8.9", "iptables_legacy"),
        ("iptables-version/iptables-1.8.9-nft.txt", "1.8.9", "iptables_nft"),
        ("iptables-version/ip6tables-1.8.9-legacy.txt", "1.8.9", "iptables_legacy"),
    ],
)
def test_recorded_version_lines_name_the_backend(fixture_text, fixture, version, backend):
    assert parse_iptables_version(fixture_text(fixture)) == (version, backend)


@pytest.mark.parametrize("text", ["", None, "bash: iptables: command not found\n"])
def test_unrecognised_output_names_nothing(text):
    assert parse_iptables_version(text) == (None, None)
