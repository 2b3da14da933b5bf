"""Errors raised by the emulator.

One tree, rooted in :class:`EmulatorError`::

    EmulatorError
    ├── ConfigError              an EmulatorConfig value is out of range
    ├── CampaignFileError        the campaign YAML cannot be read or is invalid
    └── ApiError                 an Integration API call is answered with an error status
        ├── InvalidDataError     400 "The submitted data was invalid" with ``errors[]``
        ├── BadRequestError      400 ErrorResponse with a message (state machine, unknown session)
        ├── UnauthorizedError    401 ErrorResponseWithStatus
        ├── NotFoundError        404 ErrorResponseWithStatus
        ├── ConflictError        409 too many requests for one integration ID
        └── AlreadyExistsError   409 the entity to create exists already (audience integrationId)

An :class:`ApiError` knows the HTTP status and the exact JSON body Talon.One would send, so the
HTTP layer only has to serialise :meth:`ApiError.body`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "ApiErrorDetail",
    "BadRequestError",
    "CampaignFileError",
    "ConfigError",
    "ConflictError",
    "EmulatorError",
    "InvalidDataError",
    "NotFoundError",
    "UnauthorizedError",
]

INVALID_DATA_MESSAGE = "The submitted data was invalid"


class EmulatorError(Exception):
    """Root of every error the emulator raises."""


class ConfigError(EmulatorError, ValueError):
    """An :class:`~talon_one_emulator.config.EmulatorConfig` value is invalid."""


class CampaignFileError(EmulatorError):
    """The campaign file could not be loaded.

    Attributes:
        path: the file (``None`` for an in-memory document).
        reason: what is wrong, readable by the person who wrote the file.
    """

    def __init__(self, path: Path | None, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = str(path) if path is not None else "<campaigns>"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class ApiErrorDetail:
    """One entry of ``errors[]`` (the APIError model): a title, details and where it points."""

    title: str
    details: str
    pointer: str | None = None
    parameter: str | None = None

    def as_dict(self) -> dict[str, Any]:
        source: dict[str, str] = {}
        if self.pointer is not None:
            source["pointer"] = self.pointer
        if self.parameter is not None:
            source["parameter"] = self.parameter
        return {"title": self.title, "details": self.details, "source": source}


class ApiError(EmulatorError):
    """An Integration API call that is answered with an error.

    Attributes:
        status: the HTTP status code.
        message: the ``message`` of the body.
        errors: the ``errors[]`` entries (may be empty).
        with_status: whether the body carries ``StatusCode`` (ErrorResponseWithStatus).
    """

    status: int = 400
    with_status: bool = False

    def __init__(self, message: str, errors: tuple[ApiErrorDetail, ...] = ()) -> None:
        self.message = message
        self.errors = errors
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The JSON body Talon.One answers with."""
        body: dict[str, Any] = {"message": self.message}
        if self.errors:
            body["errors"] = [error.as_dict() for error in self.errors]
        if self.with_status:
            body["StatusCode"] = self.status
        return body

    def __str__(self) -> str:
        if not self.errors:
            return f"{self.status}: {self.message}"
        details = "; ".join(error.details for error in self.errors)
        return f"{self.status}: {self.message} ({details})"


class InvalidDataError(ApiError):
    """400: the body or a query parameter failed validation."""

    def __init__(self, errors: tuple[ApiErrorDetail, ...]) -> None:
        super().__init__(INVALID_DATA_MESSAGE, errors)


class BadRequestError(ApiError):
    """400 with a plain message, e.g. a forbidden session state transition."""


class UnauthorizedError(ApiError):
    """401: missing or unknown ``Authorization: ApiKey-v1 <key>``."""

    status = 401
    with_status = True


class NotFoundError(ApiError):
    """404: unknown path or entity."""

    status = 404
    with_status = True


class ConflictError(ApiError):
    """409: more requests in flight for one integration ID than Talon.One queues."""

    status = 409
    with_status = True

    def __init__(self, entity: Literal["session", "profile"]) -> None:
        super().__init__(f"Too many requests are updating this {entity} at the same time")


class AlreadyExistsError(ApiError):
    """409: the entity to create exists already (an audience's ``integrationId``)."""

    status = 409
    with_status = True
