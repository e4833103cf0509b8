"""What every target Python compiles: each source file the collection sends to a host (modules, module_utils) as the
newest supported target Python reads it, not only as the controller's does."""

import ast
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
SOURCES = sorted(os.path.relpath(os.path.join(top, name), ROOT)
                 for folder in ("plugins/modules", "plugins/module_utils")
                 for top, _dirs, names in os.walk(os.path.join(ROOT, folder)) for name in names if name.endswith(".py"))


def _surrogates(text):
    return [hex(ord(char)) for char in text if 0xD800 <= ord(char) <= 0xDFFF]


@pytest.mark.parametrize("source", SOURCES)
def test_no_docstring_holds_a_lone_surrogate(source):
    # Python 3.13 cleans docstrings when it compiles them, through UTF-8: a lone surrogate in one (an escape such as
    # \ud800 in a docstring that is not raw) is a UnicodeEncodeError at import, and every module that imports the
    # file fails on a Debian 13 host (found by the mixed fleet, issue #38).
    with open(os.path.join(ROOT, source), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in [tree] + [node for node in ast.walk(tree)
                          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]:
        docstring = ast.get_docstring(node, clean=False) or ""
        assert not _surrogates(docstring), (source, getattr(node, "name", "module"), _surrogates(docstring))
