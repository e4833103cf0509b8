"""Each role's README.md, from its meta/argument_specs.yml (what `ansible-doc -t role` shows) and the playbook of the
collection that runs it: `python3 tools/role_readme.py` writes them, `--check` says which differ (the unit suite runs
it: tests/unit/roles/test_role_readmes.py), so a README never says other than the spec the role validates against.
"""

import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKUP = re.compile(r"\b([OCMVIU])\(([^)]*)\)")


def plain(text):
    """Ansible's documentation markup (O(option), C(code), M(module), V(value)) as Markdown."""
    def markdown(found):
        kind, value = found.group(1), found.group(2)
        value = value.rpartition(":")[2] if kind == "O" and "#" in value else value  # O(fqcn#module:option)
        return "*%s*" % value if kind == "I" else "`%s`" % value
    return MARKUP.sub(markdown, " ".join(text) if isinstance(text, list) else str(text))


def cell(text):
    return plain(text).replace("|", "\\|").replace("\n", " ")


def playbook_of(role):
    """The collection's playbook that includes the role, and its first line's usage comment."""
    folder = os.path.join(ROOT, "playbooks")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".yml"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            text = handle.read()
        if re.search(r"packetpath\.linux\.%s\b" % re.escape(role), text):
            usage = []  # the comment lines it opens with, a command continued by backslashes
            for line in text.splitlines()[1 if text.startswith("---\n") else 0:]:
                if not line.startswith("#") or (usage and not usage[-1].endswith("\\")):
                    break
                usage.append(line[1:].strip())
            return name[:-4], "\n  ".join(usage) or None
    return None, None


def render(role):
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        specs = yaml.safe_load(handle)["argument_specs"]
    lines = ["# packetpath.linux.%s" % role, "",
             "<!-- Written by tools/role_readme.py from meta/argument_specs.yml: edit the spec, then run it. -->", ""]
    main = specs["main"]
    lines += [plain(main["short_description"]) + ".", ""]
    lines += ["- %s" % plain(paragraph) for paragraph in main.get("description") or []] + [""]
    playbook, usage = playbook_of(role)
    if playbook:
        lines += ["Run by the playbook `packetpath.linux.%s`%s" % (playbook, ":" if usage else "."), ""]
        if usage:
            lines += ["```sh", usage, "```", ""]
    for entry_point, spec in specs.items():
        options = spec.get("options") or {}
        title = "Options" if entry_point == "main" else "Options of the entry point `%s`" % entry_point
        lines += ["## %s" % title, ""]
        if not options:
            lines += ["None.", ""]
            continue
        lines += ["| option | type | default | description |", "| --- | --- | --- | --- |"]
        for name, option in options.items():
            kind = option.get("type", "str")
            if option.get("elements"):
                kind += " of %s" % option["elements"]
            default = "required" if option.get("required") else (
                "`%s`" % yaml.safe_dump(option["default"], default_flow_style=True).strip().removesuffix("\n...")
                if "default" in option else "-")
            described = plain(option.get("description", ""))
            if option.get("choices"):
                described += " One of %s." % ", ".join("`%s`" % choice for choice in option["choices"])
            lines.append("| `%s` | %s | %s | %s |" % (name, kind, default, described.replace("|", "\\|")))
        lines.append("")
    lines += ["`ansible-doc -t role packetpath.linux.%s` shows the same; the role validates its inputs against it "
              "before it runs." % role, ""]
    return "\n".join(lines)


def roles():
    folder = os.path.join(ROOT, "roles")
    return sorted(name for name in os.listdir(folder)
                  if os.path.exists(os.path.join(folder, name, "meta", "argument_specs.yml")))


def main(argv):
    stale = []
    for role in roles():
        path = os.path.join(ROOT, "roles", role, "README.md")
        text = render(role)
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != text:
            stale.append(path)
            if "--check" not in argv:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
    if "--check" in argv and stale:
        print("out of date (run tools/role_readme.py): %s" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
