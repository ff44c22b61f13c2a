"""Exceptions. Each one says which outcome it leads to (see ``outcomes.Outcome``)."""

from __future__ import annotations


class CollectorError(Exception):
    """Base class of every error this function raises on purpose."""


class ConfigError(CollectorError):
    """A missing or malformed setting; the message names the variable."""


class RejectedError(CollectorError):
    """Bad input or a policy refusal: the job is ``rejected``, nothing is committed, no retry."""


class TransientError(CollectorError):
    """Still failing after retries within this invocation: the job is ``error`` (the trigger retries)."""


class BudgetExceededError(TransientError):
    """Not enough of the invocation's time is left to start or finish a step."""


class IntegrityError(TransientError):
    """A copied object does not match its source (size or checksum)."""


class CredentialsError(CollectorError):
    """The cloud refused our credentials or permissions: ``error``, raised so the trigger retries and
    finally dead-letters the message; never retried within the invocation."""


class DestinationRefusedError(CollectorError):
    """The destination bucket cannot hold the commit point (it has versioning): ``error``, not retried
    within the invocation, raised so the trigger keeps the message until the bucket is fixed."""


class InvocationFailedError(CollectorError):
    """Raised by the handler after every job was processed, when some ended as ``error``."""
