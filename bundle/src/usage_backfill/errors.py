"""Errors a job ends with; their message is what the fleet shows as the run's error."""


class JobError(Exception):
    """A job cannot do what it was asked; retrying the same run will not help."""


class ParameterError(JobError):
    """A job parameter is missing or malformed; the message names it."""


class PartitionRefused(JobError):
    """The partition belongs to someone else (the live pipeline), or its input is unsafe."""
