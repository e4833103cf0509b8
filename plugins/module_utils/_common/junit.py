# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JUnit XML for CI systems: the one way a report of ours becomes a JUnit file (the audit's, the diagnosis's)."""

import re
import xml.etree.ElementTree as ET

# XML 1.0 cannot carry most control characters, escaped or not: they become U+FFFD in the JUnit file.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def document(root):
    """The file's text: the tree with what XML cannot carry replaced, after the XML declaration."""
    for node in root.iter():
        node.attrib.update({key: _NOT_XML.sub("\ufffd", value) for key, value in node.attrib.items()})
        if node.text:
            node.text = _NOT_XML.sub("\ufffd", node.text)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def case(suite, name, classname, outcome=None, kind=None, message="", text=""):
    """A test case: passed (its text as system-out), or with outcome "failure" or "error" of `kind`."""
    element = ET.SubElement(suite, "testcase", name=name, classname=classname, time="0")
    if outcome:
        ET.SubElement(element, outcome, type=kind or outcome, message=message).text = text or None
    elif text:
        ET.SubElement(element, "system-out").text = text
    return element
