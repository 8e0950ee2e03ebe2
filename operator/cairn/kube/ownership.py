"""Owner references, so that garbage collection follows the object that made a child."""

from typing import Any, cast

import kopf


def adopt(child: dict[str, Any], owner: dict[str, Any]) -> None:
    """Make `owner` the controller of `child` (and put the child in the owner's namespace)."""
    kopf.adopt(child, owner=cast(kopf.Body, owner))
