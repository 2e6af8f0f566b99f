"""Errors a user can fix. The CLI prints them as one line (no traceback) and exits non-zero."""


class UserError(Exception):
    """Something the user asked for can't be done; the message says what to do instead."""
