"""Errors the CLI turns into one line on stderr and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a spec, a path, a run name. Printed as one line, exit 2."""


class SpecError(UserError):
    """A spec key with a bad value; the message starts with the key's dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


def error_line(text: str) -> str:
    """The last line of an error text (exception type and message), at most 500 chars."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "trial failed (no error message recorded)"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
