# Copyright: (c) 2026, packetpath developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception tree of the engine.

Every error the engine raises on purpose is a PacketpathError, so a module catches exactly one class and fails
with its text.  An OptionError is found before anything is touched: its message names the option and the value
and says, here and nowhere else, that nothing was changed.  A HostError is what the host refused or could not do
(a command that failed, a file it could not write, a tool it lacks).
"""

OMITTED = object()  # an OptionError about an option as a whole (a missing or conflicting one), not one value


class PacketpathError(Exception):
    """The root: an error the engine raises on purpose, with a message meant for the person who ran the task."""


class OptionError(PacketpathError, ValueError):
    """A bad option value, found before anything was changed."""

    consequence = "nothing was changed"

    def __init__(self, option, value=OMITTED, reason=""):
        self.option = option
        self.value = None if value is OMITTED else value
        self.reason = reason
        named = option if value is OMITTED else "%s=%r" % (option, value)
        super().__init__("%s: %s; %s" % (named, reason, self.consequence))


class HostError(PacketpathError):
    """The host refused or failed what the task asked of it."""
