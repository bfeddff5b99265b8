"""Domain errors that carry the integration contract's error codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorDetail:
    """One reason a command was refused, as the contract's outcome reports it."""

    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class DomainError(Exception):
    """A command broke a rule; nothing was recorded.

    Usually one detail; `requirements_not_met` carries one detail per missing requirement.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.details: tuple[ErrorDetail, ...] = (ErrorDetail(code, message, field),)

    @classmethod
    def of(cls, details: list[ErrorDetail]) -> DomainError:
        if not details:
            raise ValueError("a domain error needs at least one detail")
        error = cls(details[0].code, details[0].message, details[0].field)
        error.details = tuple(details)
        return error

    @property
    def code(self) -> str:
        return self.details[0].code
