"""Who is told about an incident transition, and what each channel's message looks like.

Pure. The calm rules: one alert per transition; "monitoring" is for the page only; an automatic
incident's intermediate updates (a flap, a worse impact) alert at most once per
`alert_min_interval_s`; a channel takes at most `max_alerts_per_minute` (resolves always pass);
events older than `alert_max_age_s` (a replay) alert nobody.
"""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from services.runtime.config.notifier import (
    SEVERITIES, Channel, IncidentPolicy, PagerDutyChannel,
)

from .incidents import Transition, human

ALERTING = ("opened", "reopened", "updated", "resolved")
SUBSCRIBER_TRANSITIONS = ("opened", "reopened", "resolved")


def should_alert(t: Transition, *, last_alert_at: datetime | None, now: datetime,
                 policy: IncidentPolicy) -> bool:
    if t.kind not in ALERTING:
        return False
    if (now - t.at).total_seconds() > policy.alert_max_age_s:
        return False  # old news from a replay: the page shows it, nobody is paged
    if t.kind == "updated" and t.incident.origin == "auto" and last_alert_at is not None:
        return (t.at - last_alert_at).total_seconds() >= policy.alert_min_interval_s
    return True


def channels_for(t: Transition, channels: Mapping[str, Channel], recent: Mapping[str, int],
                 policy: IncidentPolicy) -> tuple[list[str], list[str]]:
    """(channels to send to, channels over their rate limit) for an alert that should go out."""
    send, suppressed = [], []
    for name, channel in channels.items():
        if SEVERITIES.index(t.incident.impact) < SEVERITIES.index(channel.min_severity):
            continue
        if isinstance(channel, PagerDutyChannel) and t.kind == "updated":
            continue  # Events API v2 has trigger and resolve; an update is not a page
        if t.kind != "resolved" and recent.get(name, 0) >= policy.max_alerts_per_minute:
            suppressed.append(name)
            continue
        send.append(name)
    return send, suppressed


def subscriber_wants(t: Transition, components: list[str]) -> bool:
    wanted = t.kind in SUBSCRIBER_TRANSITIONS or (t.kind == "updated" and t.actor is not None)
    return wanted and (not components or t.incident.component in components)


def alert_payload(t: Transition, *, url: str) -> dict[str, Any]:
    """The channel-neutral alert kept in the outbox; every format is rendered from it."""
    i = t.incident
    return {
        "transition": t.kind, "incident_id": i.id, "title": i.title, "component": i.component,
        "impact": i.impact, "status": i.status, "message": t.body, "actor": t.actor,
        "started_at": i.started_at.isoformat(), "at": t.at.isoformat(),
        "resolved_at": i.resolved_at.isoformat() if i.resolved_at else None,
        "duration_s": i.duration_s, "flaps": i.flaps, "url": url,
    }


# --- formats -----------------------------------------------------------------------------------

def webhook_body(alert_id: str, a: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": alert_id, "type": f"incident.{a['transition']}", **a}


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """X-Lifeline-Signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`
    (Stripe's scheme: the timestamp is signed too, so a captured request cannot be replayed
    later with a fresh timestamp)."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    return hmac.compare_digest(sign(secret, int(parts["t"]), body), f"t={parts['t']},v1={parts['v1']}")


VERB = {"opened": "Opened", "reopened": "Reopened", "updated": "Update", "resolved": "Resolved"}
EMOJI = {"opened": ":rotating_light:", "reopened": ":rotating_light:", "updated": ":memo:",
         "resolved": ":white_check_mark:"}


def summary_line(a: Mapping[str, Any]) -> str:
    line = f"[{VERB.get(a['transition'], a['transition'])}] {a['title']}"
    if a["transition"] == "resolved" and a.get("duration_s") is not None:
        line += f" (lasted {human(a['duration_s'])})"
    return line


def slack_body(a: Mapping[str, Any]) -> dict[str, Any]:
    """Slack incoming-webhook message: `text` (the notification) plus Block Kit sections."""
    text = f"{EMOJI.get(a['transition'], '')} {summary_line(a)}".strip()
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*\n{a['message']}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text":
                f"impact {a['impact']} · status {a['status']} · <{a['url']}|status page>"}]},
        ],
    }


PD_SEVERITY = {"none": "info", "minor": "warning", "major": "error", "critical": "critical"}


def pagerduty_body(a: Mapping[str, Any], routing_key: str, *, source: str) -> dict[str, Any]:
    """Events API v2: trigger on open/reopen, resolve on resolve; the incident id dedupes."""
    if a["transition"] == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve",
                "dedup_key": a["incident_id"]}
    return {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": a["incident_id"],
        "payload": {"summary": a["title"][:1024], "source": source,
                    "severity": PD_SEVERITY.get(a["impact"], "error"), "component": a["component"],
                    "timestamp": a["at"], "custom_details": {"message": a["message"],
                                                             "status": a["status"]}},
        "links": [{"href": a["url"], "text": "Status page"}],
    }


def email_message(a: Mapping[str, Any], *, sender: str, to: list[str],
                  unsubscribe: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[Lifeline] {summary_line(a)}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    lines = [a["title"], "", a["message"], "", f"Impact: {a['impact']}", f"Status: {a['status']}",
             f"Started: {a['started_at']}"]
    if a.get("resolved_at"):
        lines.append(f"Resolved: {a['resolved_at']}")
    lines += ["", a["url"]]
    if unsubscribe:
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        lines += ["", f"Unsubscribe: {unsubscribe}"]
    msg.set_content("\n".join(lines))
    return msg


def backoff(attempts: int, *, initial: float, maximum: float) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling, capped."""
    return min(maximum, initial * 2 ** max(0, attempts - 1))
