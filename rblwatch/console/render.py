"""The console's templates: one Jinja2 environment, autoescaping every value.

Templates and static assets ship inside the package (operators run air-gapped: no CDN, no
external fonts). Templates only render what `rblwatch.views` built; they decide nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2

from rblwatch.model import DnsList, Event
from rblwatch.views.page import NO_PROBLEMS, Problems, overview
from rblwatch.views.status import PairCounts, StatusView

# One policy for every response of the console: nothing from elsewhere, no inline script,
# no framing. A value that slipped past escaping still could not run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

STATIC_TYPES = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rblwatch.console", "templates"),
        autoescape=True,  # every template, whatever its name
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field is an error, not an empty cell
    )
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render_page(
    view: StatusView,
    events: Sequence[Event],
    lists: Sequence[DnsList],
    version: str,
    *,
    now: float | None = None,
    served_by: str | None = None,
    problems: Problems = NO_PROBLEMS,
    default_interval: float | None = None,
    mark: str = "",
    per_list: Mapping[str, PairCounts] | None = None,
) -> str:
    """The overview page of a status view and the recent `events` (oldest first): the
    `views.page.overview` model, rendered."""
    model = overview(
        view,
        events,
        lists,
        version,
        now=now,
        served_by=served_by,
        problems=problems,
        default_interval=default_interval,
        per_list=per_list,
    )
    context = {"version": version, "served_by": served_by, "mark": mark, "here": "/"}
    return render("overview.html", o=model, **context)


def form_problem(message: str, back: str | None, version: str) -> str:
    """The page a browser's form post ends on when it was refused: the problem in one line
    and the way back to the page it came from."""
    return render(
        "error.html",
        version=version,
        served_by=None,
        mark="",
        here=back or "/",
        message=message,
        back=back,
        heading="Not saved",
    )


@functools.cache
def static_file(name: str) -> bytes | None:
    """A static asset's bytes (read once), None if the package has no such asset."""
    if name not in STATIC_TYPES:
        return None
    return resources.files("rblwatch.console").joinpath("static", name).read_bytes()


__all__ = [
    "CSP",
    "STATIC_TYPES",
    "environment",
    "form_problem",
    "render",
    "render_page",
    "static_file",
]
