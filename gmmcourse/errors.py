"""The one exception type for mistakes a user can make (bad path, corrupt file, unknown unit ...).

The command line turns a :class:`UserError` into one line on stderr and exit status 2; anything
else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix; its message is shown as is, on one line."""
