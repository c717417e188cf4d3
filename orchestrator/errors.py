"""Errors the CLI turns into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a spec, a path, a run name. Printed as one line, exit 2."""


class SpecError(UserError):
    """A spec key with a bad value; the message starts with the key's dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
