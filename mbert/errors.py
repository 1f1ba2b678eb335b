"""Errors a user can cause. The CLI prints them as one line and exits non-zero, without a traceback."""


class UserError(Exception):
    """A problem with the user's input (paths, data, settings). `exit_code` is what the CLI returns."""

    exit_code = 1


class ConfigError(UserError):
    """A recipe or flag is invalid: unknown key, wrong type, value out of range, missing path."""

    exit_code = 2
