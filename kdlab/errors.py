"""The one exception type kdlab raises for bad input, so callers (and notebooks) can catch it."""


class KDLabError(ValueError):
    """Bad input or a missing prerequisite, raised before any long work starts.

    The message always says what was wrong and what to do about it.
    """
