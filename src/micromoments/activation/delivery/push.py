"""Push as a signed webhook to a push gateway, in the JSON shape of an FCM HTTP v1 message with
an APNs block, so a thin relay can forward it to Firebase or Apple unchanged.

>>> from micromoments.activation.delivery.base import Message
>>> p = push_payload(Message("d1", "p1", "push", {"title": "Hi", "body": "Greenhaven Leeds is 2 km away",
...     "url": "https://x/s/leeds"}, to="tok123"))
>>> p["message"]["token"], p["message"]["notification"]["body"]
('tok123', 'Greenhaven Leeds is 2 km away')
>>> p["message"]["apns"]["payload"]["aps"]["alert"]["title"]
'Hi'
"""

from __future__ import annotations

from typing import Any

from micromoments.activation.delivery.base import Message
from micromoments.activation.delivery.webhook import post_signed


def push_payload(message: Message) -> dict[str, Any]:
    """FCM v1 `{"message": {...}}`; without a device token it targets the topic `person-<id>`."""
    c = message.content
    data = {"decision_id": message.decision_id, "person_id": message.person_id,
            "content_id": str(c.get("id", "")), "url": str(c.get("url", "")),
            "playbook": message.playbook or ""}
    msg: dict[str, Any] = {
        "notification": {"title": c.get("title", ""), "body": c.get("body", "")},
        "data": data,  # FCM data values must be strings
        "android": {"priority": "high", "notification": {"click_action": "OPEN_URL"}},
        "apns": {"headers": {"apns-priority": "10", "apns-push-type": "alert"},
                 "payload": {"aps": {"alert": {"title": c.get("title", ""), "body": c.get("body", "")},
                                     "sound": "default"},
                             "decision_id": message.decision_id, "url": data["url"]}},
    }
    if c.get("image"):
        msg["notification"]["image"] = c["image"]
    if message.to:
        msg["token"] = message.to
    else:
        msg["topic"] = f"person-{message.person_id}"
    return {"message": msg}


class PushDeliverer:
    """POST `push_payload(message)` to the push gateway URL, HMAC-signed like every webhook."""

    def __init__(self, url: str, secret: str = "", *, timeout: float = 5.0):
        self.url, self.secret, self.timeout = url, secret, timeout

    def send(self, message: Message) -> str:
        post_signed(self.url, push_payload(message), self.secret, timeout=self.timeout)
        return self.url
