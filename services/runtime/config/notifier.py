"""Notifier: status page, incidents, subscribers, outbound alert channels.

Secrets (webhook signing keys, Slack URLs, PagerDuty routing keys, SMTP passwords, the admin
token) are named here by the environment variable that holds them, never written here.
"""

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ._base import Strict

# An incident's impact, and a channel's threshold on it (Statuspage's scale).
Severity = Literal["none", "minor", "major", "critical"]
SEVERITIES: tuple[Severity, ...] = ("none", "minor", "major", "critical")


class WebhookChannel(Strict):
    """A generic JSON webhook, signed with HMAC-SHA256 (X-Lifeline-Signature: t=..,v1=..)."""

    kind: Literal["webhook"]
    url: str | None = None  # or url_env, when the URL itself is a secret
    url_env: str | None = None
    secret_env: str | None = None  # the signing key's variable; unset: sent unsigned
    min_severity: Severity = "minor"
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_url(self) -> "WebhookChannel":
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        return self


class SlackChannel(Strict):
    """A Slack incoming webhook; its URL is a secret, so only by variable."""

    kind: Literal["slack"]
    url_env: str
    min_severity: Severity = "major"
    timeout_s: float = Field(default=10.0, gt=0)


class PagerDutyChannel(Strict):
    """PagerDuty Events API v2: trigger and resolve with the incident id as dedup_key."""

    kind: Literal["pagerduty"]
    routing_key_env: str
    base_url: str = "https://events.pagerduty.com"  # tests point it at a local receiver
    min_severity: Severity = "major"
    timeout_s: float = Field(default=10.0, gt=0)


class EmailChannel(Strict):
    """E-mail to on-call over the `smtp` server below."""

    kind: Literal["email"]
    to: list[str] = Field(min_length=1)
    min_severity: Severity = "major"


Channel = Annotated[
    WebhookChannel | SlackChannel | PagerDutyChannel | EmailChannel, Field(discriminator="kind")
]


class SmtpConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=25, gt=0)
    from_addr: str = "lifeline@localhost"
    username_env: str | None = None
    password_env: str | None = None
    starttls: bool = False  # STARTTLS after connecting
    use_tls: bool = False  # implicit TLS (port 465)
    timeout_s: float = Field(default=10.0, gt=0)


class IncidentPolicy(Strict):
    """How events become incidents and alerts: the windows that keep a flap one incident."""

    # A recovered component is "monitoring" this long before its incident resolves; a failure
    # inside the window folds back into the same incident (no resolve/reopen pair per flap).
    resolve_after_s: float = Field(default=120.0, ge=0)
    # A failure this soon after a resolution reopens that incident instead of opening a new one.
    reopen_within_s: float = Field(default=900.0, ge=0)
    # An incident's intermediate updates (a flap, a worse impact) alert at most this often;
    # opening, reopening and resolving always alert.
    alert_min_interval_s: float = Field(default=300.0, ge=0)
    # Per channel: more alerts than this in a minute are dropped (counted), resolves excepted.
    max_alerts_per_minute: int = Field(default=20, ge=1)
    # Events older than this (a replay after downtime) update the page but alert nobody.
    alert_max_age_s: float = Field(default=900.0, gt=0)


class DeliveryConfig(Strict):
    """The alert outbox: retried with exponential backoff until delivered or too old."""

    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    give_up_after_s: float = Field(default=86_400.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)  # a claimed alert is retried by anyone after this
    poll_s: float = Field(default=1.0, gt=0)  # also woken at once when this instance enqueues


CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
RESERVED_CHANNELS = ("bus", "subscriber")  # the outbox's own queues

DEFAULT_SERVICES = ["router", "health-monitor", "cost-guard", "conversation-store",
                    "backup-agent", "notifier", "gateway"]


class NotifierConfig(Strict):
    """The `notifier` section of lifeline.yaml (optional; every field has a default)."""

    page_name: str = "Lifeline status"
    public_url: str | None = None  # links in alerts, the feed and unsubscribe mails
    admin_token_env: str = "LIFELINE_ADMIN_TOKEN"  # unset: every admin action is refused
    services: list[str] = Field(default_factory=lambda: list(DEFAULT_SERVICES))
    channels: dict[str, Channel] = Field(default_factory=dict)
    # Webhook subscriptions from the public page: `public` sends only to hosts whose every
    # address is on the public internet (no loopback, private, link-local or metadata addresses:
    # anyone can subscribe, so a subscription must not make us call inside our own network);
    # `any` for closed networks and tests; `off` allows e-mail subscriptions only.
    subscriber_webhooks: Literal["public", "any", "off"] = "public"
    smtp: SmtpConfig | None = None  # needed by e-mail channels and e-mail subscribers
    incidents: IncidentPolicy = IncidentPolicy()
    delivery: DeliveryConfig = DeliveryConfig()
    live_poll_s: float = Field(default=1.0, gt=0)  # how often open pages check for changes
    history_days: int = Field(default=90, ge=1)  # the uptime bars

    @model_validator(mode="after")
    def _channels_are_usable(self) -> "NotifierConfig":
        for name, channel in self.channels.items():
            if not CHANNEL_NAME.match(name) or name in RESERVED_CHANNELS:
                raise ValueError(f"channel name {name!r}: use letters, digits, - and _, "
                                 f"and none of {', '.join(RESERVED_CHANNELS)}")
            if isinstance(channel, EmailChannel) and self.smtp is None:
                raise ValueError(f"channel {name!r} sends e-mail: add an smtp block")
        return self
