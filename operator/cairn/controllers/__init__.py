"""Kopf handlers, one module per kind; importing this package registers all of them with kopf."""

from cairn.controllers import settings

__all__ = ["settings"]
