"""A small, picklable exception tree. Messages say what failed and what to do about it.

Prefect serialises exceptions between processes, so every class keeps its constructor
arguments in ``args`` (via ``__reduce__``).
"""

from __future__ import annotations


class DigestError(Exception):
    """Base class of every error this package raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(DigestError):
    """A setting is missing or invalid."""


class FetchError(DigestError):
    """arXiv (RSS or API) could not be reached or answered something unusable."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url

    def __reduce__(self) -> tuple[type[FetchError], tuple[str, str | None]]:
        return (type(self), (self.message, self.url))


class FeedParseError(FetchError):
    """The feed was fetched but is not valid XML / not an arXiv feed."""


class StoreError(DigestError):
    """The store could not be opened or migrated."""


class LLMError(DigestError):
    """An LLM call failed for good (after retries)."""

    def __init__(self, message: str, paper_id: str | None = None) -> None:
        super().__init__(message)
        self.paper_id = paper_id

    def __reduce__(self) -> tuple[type[LLMError], tuple[str, str | None]]:
        return (type(self), (self.message, self.paper_id))


class ModelError(DigestError):
    """The relevance model is missing, incompatible or cannot be trained on the given data."""


class InputError(DigestError):
    """A user-supplied file has a bad line (the message names the line)."""


class AlarmError(DigestError):
    """A run finished but its result must not be trusted (e.g. papers fetched, none summarised)."""
