"""A command runner that answers from recorded output, and fails on anything it was not told."""


class ReplayRunner:
    def __init__(self, tools, answers):
        self.tools = tools        # program name -> path
        self.answers = answers    # tuple(argv) -> (rc, stdout, stderr)
        self.calls = []

    def which(self, name):
        return self.tools.get(name)

    def run(self, argv, data=None):
        self.calls.append((list(argv), data))
        key = tuple(argv)
        if key not in self.answers:
            raise AssertionError("unexpected command: %s" % " ".join(argv))
        return self.answers[key]
