"""User-facing errors: the CLI prints their message on one line and exits non-zero, no traceback.

Raise one of these wherever bad input can be detected; the message must name the problem *and* the
fix (which field, flag or file to change).
"""

from __future__ import annotations


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


class DamagedFile(DataError):
    """A file the program wrote earlier that can no longer be read (garbled, truncated, not JSON)."""

    def __init__(self, path: object, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path} {problem}; {fix or 'delete or restore that file (only its run is affected)'}.")


class DiskError(ScalinglabError):
    """The operating system refused a read or write (disk full, permission, read-only file system)."""

    @classmethod
    def from_os(cls, e: OSError, path: object) -> DiskError:
        import errno

        name = errno.errorcode.get(e.errno, "") if e.errno else ""
        where = e.filename or path
        fix = {
            "ENOSPC": "free some space (or point runtime.out_dir / $SCALINGLAB_CACHE elsewhere), then run the same command again to resume",
            "EDQUOT": "free some quota, then run the same command again to resume",
            "EACCES": "fix the permissions or write somewhere else",
            "EROFS": "the file system is read-only; write somewhere else",
            "ENOTDIR": "a part of that path is a file, not a folder; write somewhere else",
        }.get(name, "fix the cause, then run the same command again")
        return cls(f"cannot write {where}: {e.strerror or e} [{name or e.errno}]; {fix}.")


class LockedError(ScalinglabError):
    """Another live process holds the run directory (one writer per run)."""


class Stopped(ScalinglabError):
    """Training was stopped from outside (SIGTERM, SIGINT); the run stays pending and resumes when run again."""
