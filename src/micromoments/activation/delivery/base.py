"""What a deliverer receives, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class DeliveryError(Exception):
    """A send failed. `retryable=False` (e.g. HTTP 400, a refused address) skips the retries."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Message:
    """One piece of rendered content on its way to one person on one channel."""

    decision_id: str
    person_id: str
    channel: str                      # push / email / webhook / sms
    content: dict[str, Any]           # the rendered catalog item (title, subject, body, url, ...)
    to: str | None = None             # email address or device token, when known
    playbook: str | None = None
    target: str | None = None         # webhook name, for channel webhook
    context: dict[str, Any] = field(default_factory=dict)  # moment, stage, store ... for the payload

    def as_dict(self) -> dict[str, Any]:
        return {"decision_id": self.decision_id, "person_id": self.person_id, "channel": self.channel,
                "playbook": self.playbook, "to": self.to, "content": self.content, "context": self.context}


class Deliverer(Protocol):
    """Sends one message or raises DeliveryError. Called from the worker thread, never the hot path."""

    def send(self, message: Message) -> str: ...  # returns a short description of where it went
