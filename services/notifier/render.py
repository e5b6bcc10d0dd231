"""Server-rendered HTML (Jinja2, autoescaped): the page works without JavaScript."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .snapshot import IncidentView, Snapshot

TEMPLATES = Path(__file__).parent / "templates"


def ts(value: datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.2f}%"


class Renderer:
    def __init__(self, *, page_name: str, days: int) -> None:
        self.env = Environment(loader=FileSystemLoader(TEMPLATES),
                               autoescape=select_autoescape(["html"]), trim_blocks=True,
                               lstrip_blocks=True)
        self.env.filters.update(ts=ts, pct=pct)
        self.env.globals.update(page_name=page_name, days=days)

    def _render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def page(self, snap: Snapshot) -> str:
        return self._render("page.html", snap=snap)

    def live(self, snap: Snapshot) -> str:
        """The part of the page that server-sent events replace."""
        return self._render("_live.html", snap=snap)

    def incident(self, view: IncidentView) -> str:
        return self._render("incident.html", view=view)

    def history(self, views: list[IncidentView]) -> str:
        return self._render("history.html", views=views)

    def message(self, heading: str, message: str, link: str | None = None,
                link_text: str | None = None) -> str:
        return self._render("message.html", heading=heading, message=message, link=link,
                            link_text=link_text)

    def subscribe(self, components: list[Any]) -> str:
        return self._render("subscribe.html", components=components)

    def admin(self, **context: Any) -> str:
        return self._render("admin.html", **context)
