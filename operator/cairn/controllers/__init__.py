"""Kopf handlers, one module per kind; importing this package registers all of them with kopf."""

from cairn.controllers import cache, settings
from cairn.controllers.continuoustraining import handlers as continuoustraining_handlers
from cairn.controllers.deployment import handlers as deployment_handlers
from cairn.controllers.registry import handlers as registry_handlers
from cairn.controllers.trainingrun import handlers as trainingrun_handlers

__all__ = [
    "cache",
    "continuoustraining_handlers",
    "deployment_handlers",
    "registry_handlers",
    "settings",
    "trainingrun_handlers",
]
