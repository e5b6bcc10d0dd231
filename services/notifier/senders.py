"""How each kind of outbox item goes out: webhooks, Slack, PagerDuty, e-mail, the bus.

Every sender either returns (delivered), raises Retry (try again later: the receiver is down,
busy, or timed out) or raises GiveUp (it will never be accepted as it is).
"""

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import aiosmtplib

from services.runtime.config import NotifierConfig
from services.runtime.config.notifier import (
    EmailChannel, PagerDutyChannel, SlackChannel, SmtpConfig, WebhookChannel,
)

from . import alerts
from .outbox import Item, Subscriber
from .public_urls import NotPublic, check_public

SIGNATURE_HEADER = "X-Lifeline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "lifeline-notifier/0.1"

Publish = Callable[[str, bytes, str], Awaitable[None]]  # subject, payload, message id


class Retry(Exception):
    pass


class GiveUp(Exception):
    pass


class Senders:
    def __init__(self, config: NotifierConfig, *, http: aiohttp.ClientSession,
                 subscriber_http: aiohttp.ClientSession | None = None, env: Mapping[str, str], publish: Publish, source: str,
                 public_url: Callable[[], str],
                 subscriber: Callable[[str], Awaitable[Subscriber | None]]) -> None:
        self.config = config
        self.http = http
        self.subscriber_http = subscriber_http or http
        self.env = env
        self.publish = publish
        self.source = source
        self.public_url = public_url
        self.subscriber = subscriber
        self.by_kind: dict[str, Callable[[Item], Awaitable[None]]] = {
            "webhook": self.webhook, "slack": self.slack, "pagerduty": self.pagerduty,
            "email": self.email, "subscriber_webhook": self.subscriber_webhook,
            "subscriber_email": self.subscriber_email, "bus": self.bus,
        }

    async def send(self, item: Item) -> None:
        sender = self.by_kind.get(item.kind)
        if sender is None:
            raise GiveUp(f"no sender for kind {item.kind!r}")
        await sender(item)

    def _secret(self, var: str | None, what: str) -> str:
        value = self.env.get(var) if var else None
        if not value:
            # The operator can still set it and restart: keep the alert and try again later.
            raise Retry(f"{what}: environment variable {var} is not set")
        return value

    def _channel(self, item: Item, kind: type) -> Any:
        channel = self.config.channels.get(item.channel)
        if not isinstance(channel, kind):
            raise GiveUp(f"channel {item.channel!r} is no longer configured as {item.kind}")
        return channel

    async def _post(self, url: str, body: bytes, headers: dict[str, str], timeout: float,
                    http: aiohttp.ClientSession | None = None) -> str:
        try:
            async with (http or self.http).post(url, data=body, headers={
                    "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
                    timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                text = await r.text()
                if 200 <= r.status < 300:
                    return text
                detail = f"HTTP {r.status}: {text[:200]}"
                if r.status >= 500 or r.status in (408, 409, 425, 429):
                    raise Retry(detail)
                raise GiveUp(detail)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise Retry(f"{type(e).__name__}: {e}") from None

    async def webhook(self, item: Item) -> None:
        channel: WebhookChannel = self._channel(item, WebhookChannel)
        url = channel.url or self._secret(channel.url_env, item.channel)
        body = json.dumps(alerts.webhook_body(item.id, item.payload)).encode()
        headers = {IDEMPOTENCY_HEADER: item.id, "X-Lifeline-Event": f"incident.{item.payload['transition']}"}
        if channel.secret_env:
            secret = self._secret(channel.secret_env, item.channel).encode()
            headers[SIGNATURE_HEADER] = alerts.sign(secret, int(time.time()), body)
        await self._post(url, body, headers, channel.timeout_s)

    async def slack(self, item: Item) -> None:
        channel: SlackChannel = self._channel(item, SlackChannel)
        url = self._secret(channel.url_env, item.channel)
        body = json.dumps(alerts.slack_body(item.payload)).encode()
        await self._post(url, body, {IDEMPOTENCY_HEADER: item.id}, channel.timeout_s)

    async def pagerduty(self, item: Item) -> None:
        channel: PagerDutyChannel = self._channel(item, PagerDutyChannel)
        key = self._secret(channel.routing_key_env, item.channel)
        body = json.dumps(alerts.pagerduty_body(item.payload, key, source=self.source)).encode()
        await self._post(f"{channel.base_url.rstrip('/')}/v2/enqueue", body, {}, channel.timeout_s)

    async def email(self, item: Item) -> None:
        channel: EmailChannel = self._channel(item, EmailChannel)
        await self._mail(item.payload, channel.to)

    async def _unsubscribe_url(self, item: Item) -> str:
        sub = await self.subscriber(item.channel.removeprefix("subscriber:"))
        if sub is None:
            raise GiveUp("unsubscribed before delivery")
        return f"{self.public_url()}/unsubscribe/{sub.token}"

    async def subscriber_webhook(self, item: Item) -> None:
        mode = self.config.subscriber_webhooks
        if mode == "off":
            raise GiveUp("webhook subscriptions are turned off (notifier.subscriber_webhooks)")
        if mode == "public":
            try:  # again at delivery: what was public when they subscribed may not be now
                await check_public(item.target or "")
            except NotPublic as e:
                raise GiveUp(str(e)) from None
        body = json.dumps({**alerts.webhook_body(item.id, item.payload),
                           "unsubscribe_url": await self._unsubscribe_url(item)}).encode()
        await self._post(item.target or "", body, {IDEMPOTENCY_HEADER: item.id}, 10.0,
                         http=self.subscriber_http)

    async def subscriber_email(self, item: Item) -> None:
        unsubscribe = await self._unsubscribe_url(item)
        await self._mail(item.payload, [item.target or ""], unsubscribe=unsubscribe)

    async def _mail(self, payload: Mapping[str, Any], to: list[str], unsubscribe: str | None = None) -> None:
        smtp: SmtpConfig | None = self.config.smtp
        if smtp is None:
            raise GiveUp("no smtp block in the notifier configuration")
        msg = alerts.email_message(payload, sender=smtp.from_addr, to=to, unsubscribe=unsubscribe)
        user = self._secret(smtp.username_env, "smtp username") if smtp.username_env else None
        password = self._secret(smtp.password_env, "smtp password") if smtp.password_env else None
        try:
            await aiosmtplib.send(msg, hostname=smtp.host, port=smtp.port, username=user,
                                  password=password, use_tls=smtp.use_tls,
                                  start_tls=smtp.starttls, timeout=smtp.timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as e:
            raise GiveUp(f"recipients refused: {e}") from None
        except aiosmtplib.SMTPResponseException as e:
            if 500 <= e.code < 600:
                raise GiveUp(f"SMTP {e.code}: {e.message}") from None
            raise Retry(f"SMTP {e.code}: {e.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
            raise Retry(f"{type(e).__name__}: {e}") from None

    async def bus(self, item: Item) -> None:
        payload = json.dumps(item.payload["event"]).encode()
        await self.publish(item.payload["subject"], payload, item.id)
