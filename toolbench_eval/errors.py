"""Errors a user can cause and fix. The CLI prints them without a traceback and exits with code 2."""


class UserError(Exception):
    """Bad input or configuration: the message names the file, the entry, the field and the fix."""


def located(path, message: str, *, entry=None, field: str | None = None) -> UserError:
    """Build a UserError that says where the problem is: `file: entry <id>: field 'x': message`."""
    where = [str(path)]
    if entry is not None:
        where.append(f"entry {entry}")
    if field is not None:
        where.append(f"field {field!r}")
    return UserError(": ".join(where) + ": " + message)
