"""The built-in catalogue of DNS lists (SPEC §7); its views are in `rblwatch.views.lists`.

The facts live in `catalogue.yaml` next to this module (data, not code). Loading and validation
live in `rblwatch.config.catalogue`, by the same list rules as a config's custom lists; this
module re-exports that API, so `catalogue.get(...)` reads as before.
"""

from __future__ import annotations

from rblwatch.config.catalogue import catalogue, default_names, defunct_message, get, providers
from rblwatch.config.providers import Provider

__all__ = ["Provider", "catalogue", "default_names", "defunct_message", "get", "providers"]
