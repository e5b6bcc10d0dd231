"""The Atom feed of incidents (feedgen), one entry per incident, its latest update on top."""

from datetime import datetime

from feedgen.feed import FeedGenerator
from markupsafe import escape

from .snapshot import IncidentView


def atom(views: list[IncidentView], *, url: str, title: str, updated: datetime) -> bytes:
    fg = FeedGenerator()
    fg.id(f"{url}/history")
    fg.title(f"{title}: incident history")
    fg.link(href=f"{url}/history.atom", rel="self")
    fg.link(href=url, rel="alternate")
    fg.updated(updated)
    fg.language("en")
    # feedgen prepends each entry, so add the oldest first for newest-first output
    for view in sorted(views, key=lambda v: v.incident.started_at):
        i = view.incident
        entry = fg.add_entry()
        entry.id(f"{url}/incidents/{i.id}")
        entry.title(i.title)
        entry.link(href=f"{url}/incidents/{i.id}")
        entry.published(i.started_at)
        entry.updated(i.updated_at)
        entry.author({"name": "Lifeline"})
        lines = "".join(f"<p><small>{u.at.strftime('%Y-%m-%d %H:%M:%S UTC')}</small><br>"
                        f"<strong>{escape(u.status.capitalize())}</strong> - {escape(u.body)}</p>"
                        for u in view.updates)
        entry.content(lines or escape(i.status), type="html")
    return fg.atom_str(pretty=True)
