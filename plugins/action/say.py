# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""say: print lines on the controller's terminal as they are (the module file holds the documentation)."""

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    """Prints through Display: from a worker, ansible-core hands the text to the main process, which prints it in
    order with the callback's own lines."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(
            argument_spec={"lines": {"type": "list", "elements": "str", "required": True}})
        lines = [part for line in args["lines"] for part in (line.splitlines() or [""])]
        display.display("\n".join(lines))
        result.update(changed=False, lines=lines)
        return result
