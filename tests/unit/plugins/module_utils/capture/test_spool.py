"""The live capture's ready file: the reader creates it, then writes its PID and a newline, so trace_rule waits for
the whole line (a CI run once read it between the two and failed with "list index out of range")."""

from ansible_collections.packetpath.linux.plugins.module_utils.capture import spool


def test_the_reader_listens_once_its_ready_file_holds_the_whole_line(tmp_path):
    ready = tmp_path / "flow.ready"
    assert spool._listening(str(ready)) is None  # pylint: disable=protected-access  # not created yet
    for partial in ("", "4242"):
        ready.write_text(partial)
        assert spool._listening(str(ready)) is None, repr(partial)  # pylint: disable=protected-access
    ready.write_text("4242\n")
    assert spool._listening(str(ready)) == 4242  # pylint: disable=protected-access
