# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule every module of the collection is built with: ansible-core's own, with the three ways its
argument checking let a bad value through or out as a traceback closed (found by tests/integration/module_fuzz.py):

- an int option given infinity (`-e count=inf`, YAML `.inf`) raised OverflowError out of the argument check, a
  traceback instead of a refusal (ansible/ansible#87253, fixed upstream after 2.19.14, the newest release we can
  install);
- an int option given a boolean (`burst: yes`) passed as True and reached a command line as the word "True";
- a list-of-mappings option given text (`lookups: abc`) was refused with a message that names no option;
- a mapping option with suboptions given a number or a list (`handle: 5`) raised TypeError out of ansible-core's
  suboption check, after its own type check had failed (ansible-core 2.19.14);
- text with a lone surrogate (JSON's `"\\ud800"`, which no encoding writes) reached a path or a command line and
  ended in UnicodeEncodeError (issue #42).

Its refusals end as the engine's do: "nothing was changed".
"""

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common import parameters, validation

from ansible_collections.packetpath.linux.plugins.module_utils._common.errors import OptionError


def _checked_int(value):
    if isinstance(value, bool):
        raise TypeError("%r is a boolean, not an int" % (value,))
    try:
        return validation.check_type_int(value)
    except ArithmeticError:  # OverflowError from an infinity, where ansible-core lets it out
        raise TypeError("%r cannot be converted to an int" % (value,)) from None


class PacketpathModule(AnsibleModule):
    def __init__(self, *args, **kwargs):
        # The module's own process only: ansible-core looks its type checks up in this table as it validates.
        parameters.DEFAULT_TYPE_VALIDATORS["int"] = _checked_int
        self._checking_arguments = True
        super().__init__(*args, **kwargs)
        self._checking_arguments = False

    def _load_params(self):
        super()._load_params()
        self._given = copy.deepcopy(self.params)  # as given: the check replaces what it cannot convert
        for option, value in sorted(self.params.items()):
            if _holds_surrogate(value):
                # fail_json adds "nothing was changed": this runs while the arguments are checked.
                self.fail_json(msg="%s=%r: not valid text (a lone surrogate, which no encoding can write)" % (
                    option, value))
        for option, spec in sorted(self.argument_spec.items()):
            value = self.params.get(option)
            if spec.get("type") == "dict" and spec.get("options") and not isinstance(value, (dict, str, type(None))):
                self.fail_json(msg="argument '%s' is of type %s and we were unable to convert to dict: a mapping is "
                               "wanted" % (option, type(value).__name__))

    def fail_json(self, msg, **kwargs):
        if getattr(self, "_checking_arguments", False):  # a refusal of ansible-core's, as the engine's read
            msg = "%s; %s" % (_naming_the_option(self.argument_spec, self._given, msg), OptionError.consequence)
        super().fail_json(msg=msg, **kwargs)


def _naming_the_option(spec, params, msg):
    """ansible-core's refusal, led by the option it is about where its message names none: the options given
    text (or a list with text) where the spec wants mappings, the one case found that ansible-core leaves
    unnamed."""
    if any(option in msg for option in spec):
        return msg
    suspects = ["%s=%r" % (option, params[option]) for option in sorted(spec)
                if (spec[option].get("type") == "dict" or spec[option].get("elements") == "dict")
                and any(isinstance(value, str) for value in _as_list(params.get(option)))]
    return "%s: %s" % (", ".join(suspects), msg) if suspects else msg


def _holds_surrogate(value):
    """Whether a text, or one in a list or mapping (keys too), cannot be written as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_holds_surrogate(key) or _holds_surrogate(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_surrogate(item) for item in value)
    return False


def _as_list(value):
    return value if isinstance(value, list) else [value]
