"""Events for user-visible transitions, posted through kopf's event queue."""

from typing import Any, cast

import kopf


def info(obj: dict[str, Any], reason: str, message: str) -> None:
    kopf.info(cast(kopf.Body, obj), reason=reason, message=message)


def warn(obj: dict[str, Any], reason: str, message: str) -> None:
    kopf.warn(cast(kopf.Body, obj), reason=reason, message=message)


def adopt(child: dict[str, Any], owner: dict[str, Any]) -> None:
    """Make `owner` the controller of `child`, so garbage collection follows it."""
    kopf.adopt(child, owner=cast(kopf.Body, owner))
