"""What the `control` KV bucket says this router must do (schemas/control.py). Pure state.

    killswitch                  no provider call anywhere: maintenance answer
    killswitch.route.<route>    that route only
    killswitch.key.<key_id>     one API key only (request.key_id)
    downgrade.<route>           the route runs on its downgrade_chain

A deleted key releases what it held. A value that does not parse changes nothing (it is logged
by the caller): a typo must neither engage nor release a kill switch.
"""

from dataclasses import dataclass, field

from schemas.completion import CompletionRequest
from schemas.control import (
    DOWNGRADE_PREFIX, KILLSWITCH_KEY, KILLSWITCH_KEY_PREFIX, KILLSWITCH_ROUTE_PREFIX,
    Downgrade, Killswitch,
)


@dataclass
class Controls:
    everything: str | None = None  # the reason, while the global kill switch is engaged
    routes: dict[str, str] = field(default_factory=dict)  # route -> reason
    keys: dict[str, str] = field(default_factory=dict)  # key_id -> reason
    downgraded: dict[str, str] = field(default_factory=dict)  # route -> reason

    def apply(self, key: str, value: bytes | None) -> str | None:
        """Take one KV change in. Returns a line for the log, or None if the key is not ours.

        Raises ValidationError for a value that does not parse (state unchanged)."""
        if key == KILLSWITCH_KEY:
            reason = _engaged(value)
            self.everything = reason
            return f"kill switch (all) {_said(reason)}"
        for prefix, held in ((KILLSWITCH_ROUTE_PREFIX, self.routes), (KILLSWITCH_KEY_PREFIX, self.keys)):
            if key.startswith(prefix):
                name = key.removeprefix(prefix)
                reason = _engaged(value)
                _set(held, name, reason)
                return f"kill switch ({prefix.split('.')[1]} {name}) {_said(reason)}"
        if key.startswith(DOWNGRADE_PREFIX):
            route = key.removeprefix(DOWNGRADE_PREFIX)
            downgrade = Downgrade.model_validate_json(value) if value is not None else None
            reason = (downgrade.reason or "budget") if downgrade and downgrade.active else None
            _set(self.downgraded, route, reason)
            return f"downgrade of route {route} {'ON: ' + reason if reason else 'off'}"
        return None

    def blocked(self, request: CompletionRequest) -> str | None:
        """Why this request may not reach any provider, or None."""
        if self.everything is not None:
            return self.everything
        if request.route in self.routes:
            return self.routes[request.route]
        if request.key_id is not None and request.key_id in self.keys:
            return self.keys[request.key_id]
        return None


def _engaged(value: bytes | None) -> str | None:
    if value is None:
        return None
    switch = Killswitch.model_validate_json(value)
    return (switch.reason or "engaged") if switch.engaged else None


def _set(held: dict[str, str], name: str, reason: str | None) -> None:
    if reason is None:
        held.pop(name, None)
    else:
        held[name] = reason


def _said(reason: str | None) -> str:
    return f"ENGAGED: {reason}" if reason is not None else "released"

