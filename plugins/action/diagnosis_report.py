# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""diagnosis_report on the controller: the module decides (verdicts, table), this plugin writes the run's report.

report.md and report.html come from Jinja2 templates, the shipped ones or the user's (markdown_template,
html_template, found where the template module finds its own). Jinja2 directly rather than Ansible's Templar:
report.html must be autoescaped, and every text in it that a host wrote (a rule comment, an interface name) is
data, never a template.
"""

import json
import os
import re

import jinja2
import yaml
from markupsafe import Markup

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.packetpath.linux.plugins.module_utils._common import files
from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import PacketpathError
from ansible_collections.packetpath.linux.plugins.module_utils.diagnosis import diagram, verdict

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED_TEMPLATES = os.path.join(COLLECTION_ROOT, "roles", "diagnose_port", "templates")
# (option, file written, shipped template, autoescaped)
RENDERED = (("markdown_template", "report.md", "report.md.j2", False),
            ("html_template", "report.html", "report.html.j2", True))
SHIPPED = dict((option, os.path.join(SHIPPED_TEMPLATES, template)) for option, _file, template, _escaped in RENDERED)


# What CommonMark (and GitHub's tables and strikethrough) reads as markup anywhere in a line: code, emphasis (an
# `_` only where it is not inside a word: there it never is), a link or image, raw HTML or an autolink, an entity,
# a table's cell separator, strikethrough, and the backslash itself. `]`, `!`, `(` mean nothing without a `[`.
_MARKUP = re.compile(r"[\\`*\[<&|~]|(?<![^\W_])_|_(?![^\W_])")
# What opens a block at the start of a line: where the match ends, a backslash goes. A list item (1. or 1), -, +),
# a setext underline or thematic break (=, -), a block quote, an ATX heading.
_BLOCK_START = re.compile(r"^(?:\d{1,9}(?=[.)](?:\s|$))|(?=[-+](?:\s|$)|[-=]+\s*$|>|#{1,6}(?:\s|$)))")


def markdown_text(text):
    """The host's own text (a rule comment, an interface or host name) as CommonMark prose or a table cell: on one
    line, every character that could start markup escaped (so it renders as the very text), and no list, quote,
    heading or code block opened at its start. A fence in a comment swallowed the report's table, and raw HTML
    passed. What cannot be markup stays as it is, for the person who reads the file itself."""
    text = _MARKUP.sub(lambda found: "\\" + found.group(0), " ".join(str(text).splitlines()).lstrip())
    start = _BLOCK_START.match(text)
    return text if start is None else text[:start.end()] + "\\" + text[start.end():]


def code_span(text):
    """An inline code span of `text` (a command to paste): delimited by more backticks than any run in it, with a
    space inside each end where it starts or ends with a backtick (CommonMark strips one such space)."""
    text = " ".join(str(text).splitlines())
    ticks = "`" * max([1] + [len(run) + 1 for run in re.findall("`+", text)])
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return ticks + pad + text + pad + ticks


def code_fence(text):
    """A code fence longer than any run of backticks in `text`, which would otherwise close it."""
    return "`" * max([3] + [len(run) + 1 for run in re.findall("`+", str(text))])


# What a template can call on the report's parts: the same words the terminal table uses.
FILTERS = {
    "armed_text": verdict.armed_text, "cause_text": verdict.cause_text, "drops_text": verdict.drops_text,
    "evidence_lines": verdict.evidence_lines, "fix_command": verdict.fix_command, "fix_state": verdict.fix_state,
    "icmp_text": verdict.icmp_text, "kernel_text": verdict.kernel_text, "label": verdict.label,
    "probe_text": verdict.probe_text, "window_text": verdict.window_text,
    # markdown_cell is markdown_text's earlier name, kept for templates copied from an earlier release.
    "markdown_text": markdown_text, "markdown_cell": markdown_text, "code_span": code_span, "code_fence": code_fence,
    # Escaped as it is built (diagram.svg escapes every text it draws).
    "diagram": lambda host: Markup(diagram.svg(host)),  # nosec - diagram.svg escapes the host's text itself
}


def collection_version():
    """The collection's version: its MANIFEST.json where installed from a tarball, galaxy.yml in a checkout."""
    try:
        with open(os.path.join(COLLECTION_ROOT, "MANIFEST.json"), encoding="utf-8") as handle:
            return json.load(handle)["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(COLLECTION_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
            return str(yaml.safe_load(handle)["version"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return "unknown"


def fix_task(fix, host):
    """The structured fix as a task a person can paste into a playbook, dumped by PyYAML (which quotes whatever the
    words hold: ": ", "#", a leading "*")."""
    name = "%s%s (on %s)" % (fix["why"][:1].upper(), fix["why"][1:], host)
    return yaml.safe_dump([{"name": name, fix["module"]: fix["args"]}], sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=1000)


def with_tasks(report):
    """The report with each fix's pasteable task (`task`), the fleet verdict's the culprit's."""
    hosts = [dict(host, fix=dict(host["fix"], task=fix_task(host["fix"], host["host"])) if host.get("fix") else None)
             for host in report["hosts"]]
    culprit = next((host for host in hosts if host["host"] == report["verdict"]["culprit"]), None)
    verdict = dict(report["verdict"], fix=culprit["fix"] if culprit and report["verdict"].get("fix") else None)
    return dict(report, hosts=hosts, verdict=verdict)


def render(report, templates):
    """{file written: text} from {option: template path}; a template that fails names its option."""
    texts = {}
    for option, written, _shipped, escaped in RENDERED:
        path = templates[option]
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(os.path.dirname(path)), autoescape=escaped,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        environment.filters.update(FILTERS)
        try:
            texts[written] = environment.get_template(os.path.basename(path)).render(report=report)
        except jinja2.TemplateError as exc:
            where = " (line %s)" % exc.lineno if getattr(exc, "lineno", None) else ""
            raise ValueError("%s=%s: the template failed%s: %s; nothing was written" % (option, path, where, exc))
    return texts


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def _template_path(self, option):
        """The template of `option`: the user's (a path, or a name found in the role's or playbook's templates/),
        else the shipped one."""
        given = self._task.args.get(option)
        if not given:
            return SHIPPED[option]
        try:
            return self._find_needle("templates", str(given))
        except AnsibleError:
            raise ValueError("%s=%s: no such template (a path, or a file in templates/ of the role or the playbook); "
                             "nothing was written" % (option, given))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        try:
            templates = dict((option, self._template_path(option)) for option in SHIPPED)
        except ValueError as exc:
            return dict(result, failed=True, msg=str(exc))
        decided = self._execute_module(module_name="packetpath.linux.diagnosis_report",
                                       module_args=dict(self._task.args), task_vars=task_vars)
        result.update(decided)
        if decided.get("failed"):
            return result
        report = with_tasks(dict(decided["report"], generator={"collection": "packetpath.linux",
                                                               "version": collection_version()}))
        try:  # rendered in check mode too: a broken template is found before a real run
            rendered = render(report, templates)
        except ValueError as exc:
            return dict(result, failed=True, msg=str(exc))
        written = []
        report_dir = self._task.args.get("report_dir")
        if report_dir and not self._play_context.check_mode:
            try:
                written = files.write_run(os.path.expanduser(os.path.expandvars(str(report_dir))), [  # as type=path
                    ("report.json", files.as_json(report)), ("report.md", rendered["report.md"]),
                    ("report.html", rendered["report.html"]), ("report.junit.xml", verdict.junit(report))],
                    # A report after the fix goes into its run's directory, over the first: one run, one directory.
                    float(self._task.args.get("run_started") or report["generated_epoch"]))
            except PacketpathError as exc:
                return dict(result, failed=True, msg=str(exc))
        result.update(changed=bool(written), report=report, files=written)
        return result
