"""diagnosis_report through ansible-playbook, as the role runs it: its action plugin renders report.md and
report.html from the collection's templates or the user's, on the controller, and writes one directory per run.
The hosts' data is an incident's result as the lab recorded it (tests/unit/fixtures/incidents); no lab is needed."""

import json
import os
import re
import subprocess
import sys

import jsonschema
import yaml
from markdown_it import MarkdownIt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "schemas", "diagnosis_report.schema.json"), encoding="utf-8") as _handle:
    SCHEMA = json.load(_handle)


def recorded(name):
    with open(os.path.join(ROOT, "tests", "unit", "fixtures", "incidents", name + ".json"), encoding="utf-8") as handle:
        return json.load(handle)


def replaced(data, old, new):
    """`data` with `old` replaced by `new` in every string in it."""
    if isinstance(data, dict):
        return {replaced(key, old, new): replaced(value, old, new) for key, value in data.items()}
    if isinstance(data, list):
        return [replaced(value, old, new) for value in data]
    return data.replace(old, new) if isinstance(data, str) else data


def playbook(tmp_path, task_args, *options, interface="eth1"):
    """Run one diagnosis_report task on localhost; (returncode, output, its registered result). `interface` names
    the router's eth1 in everything it reported (the host's own text, as a hostile host could choose it)."""
    incident = replaced(recorded("neighbour-failed"), "eth1", interface)
    args = dict({"hosts": {"router": incident["result"]},
                 "request": dict(incident["incident"]["probe"], port=incident["port"], trace_hosts=["router"]),
                 "probe": {"summary": {"attempts": 3, "succeeded": 0, "failed": 3, "results": {"timeout": 3}}},
                 "last_results": {"router": {"backend": "nftables", "capture": {"source": "nft_monitor"},
                                             "marker": {"time": "2026-12-05T16:40:02Z"}}}}, **task_args)
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Report", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Decide and write", "packetpath.linux.diagnosis_report": args, "register": "written"},
                  {"name": "Show", "ansible.builtin.debug": {"msg": "RESULT {{ written | to_json }}"}}]}]))
    run = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
                          "-e", "ansible_python_interpreter=%s" % sys.executable]
                         + list(options), capture_output=True, text=True, timeout=120, check=False,
                         env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))
    shown = [line for line in run.stdout.splitlines() if '"msg": "RESULT ' in line]
    result = json.loads(json.loads("{%s}" % shown[0].strip())["msg"][len("RESULT "):]) if shown else None
    return run.returncode, run.stdout + run.stderr, result


def test_the_shipped_templates_write_a_report_that_shows_the_evidence_and_fits_the_schema(tmp_path):
    rc, output, result = playbook(tmp_path, {"report_dir": str(tmp_path / "report")})
    assert rc == 0, output
    latest = tmp_path / "report" / "latest"
    assert sorted(os.listdir(latest)) == ["report.html", "report.json", "report.junit.xml", "report.md"]
    assert sorted(result["files"]) == sorted(str(latest.resolve() / name) for name in os.listdir(latest))
    report = json.loads((latest / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    assert report["generator"] == {"collection": "packetpath.linux", "version": version}
    markdown, html = (latest / "report.md").read_text(), (latest / "report.html").read_text()
    for text in (markdown, html):  # the evidence the cause rests on, the window, the version
        assert "ip route get: 198.18.20.2 from 198.18.10.2 via 198.18.20.9 dev eth1" in text
        assert "IcmpOutDestUnreachs +2" in text
        assert "Captured from 2026-12-05T16:40:02Z to " in text and "packetpath.linux %s" % version in markdown
    # The neighbour, in words (it was raw JSON, issue #39).
    assert "neighbour: address 198.18.20.9, dev eth1, state failed" in markdown
    assert "<dt>neighbour</dt><dd>address 198.18.20.9, dev eth1, state failed</dd>" in html
    assert "(neighbour_failed)" in markdown and "<p class=\"way\"><strong>router \u2717</strong>" in html


def test_a_users_template_replaces_the_shipped_one_and_host_text_is_escaped_in_html(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.html.j2").write_text(
        "<p>{{ report.verdict.cause }} on {{ report.verdict.culprit }}: {{ report.hosts[0].words }}</p>\n")
    (tmp_path / "mine.md.j2").write_text("{{ report.verdict.cause | upper }}\n")
    rc, output, _result = playbook(tmp_path, {"report_dir": str(tmp_path / "report"), "html_template": "mine.html.j2",
                                              "markdown_template": str(tmp_path / "mine.md.j2")})
    assert rc == 0, output
    latest = tmp_path / "report" / "latest"
    assert (latest / "report.md").read_text() == "NEIGHBOUR_FAILED\n"
    assert (latest / "report.html").read_text().startswith("<p>neighbour_failed on router: the next hop")
    # A host's own text (here its interface name in the words) is data: autoescaped, never markup.
    (tmp_path / "templates" / "mine.html.j2").write_text("<p>{{ '<b>' ~ report.hosts[0].host }}</p>\n")
    rc, output, _result = playbook(tmp_path, {"report_dir": str(tmp_path / "report2"), "html_template": "mine.html.j2"})
    assert rc == 0, output
    assert (tmp_path / "report2" / "latest" / "report.html").read_text() == "<p>&lt;b&gt;router</p>\n"


HOSTILE = "<b>x</b>`y`*z*_w_|[l](http://e)&amp;<!--~~s~~\n```\n# h\n1. i"
# The same as the renderer shows it: on one line.
HOSTILE_SHOWN = HOSTILE.replace("\n", " ")


def rendered_text(tokens):
    """Every text and code a CommonMark renderer shows, in order, and the kinds of markup it made."""
    shown, kinds = [], set()
    for token in tokens:
        kinds.add(token.type)
        if token.children:
            more_shown, more_kinds = rendered_text(token.children)
            shown += more_shown
            kinds |= more_kinds
        elif token.type in ("text", "code_inline", "fence"):
            shown.append(token.content)
    return shown, kinds


def test_the_hosts_own_text_is_text_in_report_md_wherever_it_lands(tmp_path):
    """Issue #42: report.md let raw HTML through, and a fence in a rule comment swallowed the table. Here the
    router's interface is named with every kind of markup (HTML, code, emphasis, a link, an entity, a comment, a
    fence, a heading, a list). Read by a CommonMark renderer, report.md is made of the same blocks and markup as
    with the name eth1 (no HTML, link, emphasis, list or heading of the name's own), and each place the name lands
    shows it as it is."""
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    made = {}
    for interface in ("eth1", HOSTILE):
        rc, output, _result = playbook(tmp_path, {"report_dir": str(tmp_path / interface[:4])}, interface=interface)
        assert rc == 0, output
        tokens = parser.parse((tmp_path / interface[:4] / "latest" / "report.md").read_text())
        made[interface] = ([token.type for token in tokens], rendered_text(tokens))
    (plain_blocks, (plain_shown, plain_kinds)), (blocks, (shown, kinds)) = made["eth1"], made[HOSTILE]
    assert blocks == plain_blocks and kinds == plain_kinds, (set(kinds) - set(plain_kinds), blocks)

    def plain(text):  # the name as a code block keeps it, as prose shows it, as JSON in the evidence writes it
        for form in (HOSTILE, HOSTILE_SHOWN, json.dumps(HOSTILE)[1:-1]):
            text = text.replace(form, "eth1")
        return text

    generated = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # the two runs' times
    assert [generated.sub("", plain(text)) for text in shown] == \
        [generated.sub("", text) for text in plain_shown]
    assert sum(HOSTILE_SHOWN in text for text in shown) >= 3, shown  # the verdict, the table's cause, the evidence
    assert any(HOSTILE in text for text in shown), shown  # the trace's hops, in a code block: its lines as they are


def test_markdown_text_and_code_span_render_as_the_very_text():
    """Each of a set of hostile strings, alone in a paragraph (markdown_text) or as a code span, renders as itself."""
    from ansible_collections.packetpath.linux.plugins.action.diagnosis_report import code_span, markdown_text
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    for text in (HOSTILE_SHOWN, "- item", "+ item", "12. item", "3) item", "=", "    indented", "# heading",
                 "> quote", "a\\*b", "`", "``a``", " `x` ", "<http://e>", "&#42;", "***", "| a | b |", "~~~"):
        shown, kinds = rendered_text(parser.parse(markdown_text(text)))
        assert "".join(shown) == " ".join(text.splitlines()).strip() and kinds <= {
            "paragraph_open", "paragraph_close", "inline", "text", "softbreak"}, (text, markdown_text(text), kinds)
        shown, kinds = rendered_text(parser.parse("run " + code_span(text)))
        assert shown[-1] == " ".join(text.splitlines()), (text, code_span(text), shown)
    assert markdown_text("net.ipv4.conf.eth0/100.rp_filter=2 on 198.18.0.1: [KUBE-SVC] (x) !") == \
        "net.ipv4.conf.eth0/100.rp_filter=2 on 198.18.0.1: \\[KUBE-SVC] (x) !"  # readable where nothing is markup


def test_a_missing_or_broken_template_fails_naming_its_option_and_writes_nothing(tmp_path):
    rc, output, _result = playbook(tmp_path, {"report_dir": str(tmp_path / "report"), "html_template": "absent.j2"})
    assert rc != 0 and "html_template=absent.j2: no such template" in output and "nothing was written" in output
    (tmp_path / "templates" / "broken.md.j2").write_text("{% for x in %}\n")
    rc, output, _result = playbook(tmp_path, {"report_dir": str(tmp_path / "report"),
                                              "markdown_template": "broken.md.j2"})
    assert rc != 0 and "markdown_template=" in output and "broken.md.j2: the template failed (line 1)" in output
    assert not (tmp_path / "report").exists()


def test_check_mode_renders_the_templates_and_writes_nothing(tmp_path):
    rc, output, result = playbook(tmp_path, {"report_dir": str(tmp_path / "report")}, "--check")
    assert rc == 0, output
    assert result["files"] == [] and not result["changed"] and not (tmp_path / "report").exists()
    (tmp_path / "templates" / "broken.md.j2").write_text("{{ report.verdict | no_such_filter }}\n")
    rc, output, _result = playbook(tmp_path, {"report_dir": str(tmp_path / "report"),
                                              "markdown_template": "broken.md.j2"}, "--check")
    assert rc != 0 and "broken.md.j2: the template failed" in output and not (tmp_path / "report").exists()
