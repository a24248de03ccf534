"""The one exception type for mistakes a user can fix; the CLI prints it as one line."""


class UserError(Exception):
    """Bad input (path, file, parameter): the message says what is wrong and how to fix it."""
