"""The operator's console (issue 11): server-rendered pages over the store, from Jinja2
templates with autoescaping, with their CSS and one small script shipped in the package.

Every page works without JavaScript; with it, a page polls `/live` and redraws itself when a
new event or listing arrives. Routes are registered by `rblwatch.web.make_app` through
`add_routes`; the view models are `rblwatch.views`' (pure, unit-tested).
"""

from __future__ import annotations

from rblwatch.console.handlers import Console, add_routes

__all__ = ["Console", "add_routes"]
