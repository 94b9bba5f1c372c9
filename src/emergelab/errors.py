"""Exceptions that reach the user as one clear line (exit code 2), never a traceback."""


class EmergelabError(Exception):
    """A problem the user can fix: bad input, unknown name, missing file, failed run."""


class ConfigError(EmergelabError):
    """A config key, type or value is wrong. The message names the key."""


class RegistryError(EmergelabError, KeyError):
    """An unknown name was asked of a registry."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class StoreError(EmergelabError):
    """The run store or a run directory is missing, corrupt or inconsistent."""


class TrainingDiverged(EmergelabError):
    """The loss became NaN or infinite; the run is marked failed, everything written before is kept."""


class NotFittedError(EmergelabError, ValueError):
    """An estimator was used before `fit`."""


class DataError(EmergelabError):
    """A dataset file or folder is missing, empty or corrupt."""
