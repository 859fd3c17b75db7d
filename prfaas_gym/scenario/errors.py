"""Scenario errors: one line naming the file and the dotted field."""


class ScenarioError(ValueError):
    """A scenario file is malformed; the message reads ``file: field: what is wrong``."""
