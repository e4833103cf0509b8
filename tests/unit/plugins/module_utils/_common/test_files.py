"""Report files on the controller: each is replaced whole, never written through a symlink at its name, and
nothing is left behind when writing fails."""

import os

import pytest
from ansible_collections.packetpath.linux.plugins.module_utils._common import files
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import HostError


def test_a_symlink_at_a_report_s_name_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.json").symlink_to(victim)
    written = files.write(str(report_dir), [("report.json", "{}\n"), ("report.md", "# r\n")])
    assert written == [str(report_dir / "report.json"), str(report_dir / "report.md")]
    assert victim.read_text() == "precious\n" and not (report_dir / "report.json").is_symlink()
    assert (report_dir / "report.json").read_text() == "{}\n"
    assert sorted(os.listdir(report_dir)) == ["report.json", "report.md"]


def test_a_report_that_cannot_be_written_fails_by_name_and_leaves_no_temp_file(tmp_path):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.json").mkdir()  # its name is taken by a directory
    with pytest.raises(HostError, match="report_dir=.*cannot write the report"):
        files.write(str(report_dir), [("report.json", "{}\n")])
    assert os.listdir(report_dir) == ["report.json"]


def test_each_run_keeps_its_own_report_and_latest_points_at_the_last(tmp_path):
    first = files.write_run(str(tmp_path), [("report.json", "{\"run\": 1}\n")], 1795546212.5)
    second = files.write_run(str(tmp_path), [("report.json", "{\"run\": 2}\n")], 1795546213.25)
    assert first == [str(tmp_path / "20261124T185012.500000Z" / "report.json")]
    assert second == [str(tmp_path / "20261124T185013.250000Z" / "report.json")]
    assert (tmp_path / "20261124T185012.500000Z" / "report.json").read_text() == "{\"run\": 1}\n"
    assert os.readlink(tmp_path / "latest") == "20261124T185013.250000Z"
    assert (tmp_path / "latest" / "report.json").read_text() == "{\"run\": 2}\n"
    assert sorted(os.listdir(tmp_path)) == ["20261124T185012.500000Z", "20261124T185013.250000Z", "latest"]


def test_a_name_fits_only_with_room_for_the_temporary_name_it_is_written_through(tmp_path):
    longest = "x" * (255 - len("..") - 8)
    assert files.fits(longest) and not files.fits(longest + "x")
    assert files.write(str(tmp_path), [(longest, "kept\n")]) == [str(tmp_path / longest)]
