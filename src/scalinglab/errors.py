"""User-facing errors: the CLI prints their message on one line and exits non-zero, no traceback.

Raise one of these wherever bad input can be detected; the message must name the problem *and* the
fix (which field, flag or file to change).
"""


class ScalinglabError(Exception):
    """Base class for every error the user can fix."""


class ConfigError(ScalinglabError):
    """A configuration value, key or combination that cannot be used."""


class DataError(ScalinglabError):
    """A corpus, token cache or runs table that cannot be used."""


class FitError(ScalinglabError):
    """A law that cannot be fitted to the data given (too few points, degenerate inputs)."""


class TrainingError(ScalinglabError):
    """A run that failed (diverged, NaN loss) or cannot resume."""
