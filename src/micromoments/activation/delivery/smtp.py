"""Email over SMTP with the standard library (STARTTLS and login when configured)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from micromoments.activation.delivery.base import DeliveryError, Message


def build_email(message: Message, sender: str) -> EmailMessage:
    """A plain-text email from the rendered content (subject, body, then the link).

    >>> m = build_email(Message("d1", "p1", "email", {"subject": "Your cart", "body": "Use SAVE10",
    ...     "url": "https://x/cart"}, to="a@b.example"), "shop@x.example")
    >>> m["To"], m["Subject"], "SAVE10" in m.get_content()
    ('a@b.example', 'Your cart', True)
    """
    c = message.content
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = message.to or ""
    msg["Subject"] = c.get("subject") or c.get("title") or ""
    msg["Message-ID"] = make_msgid(idstring=message.decision_id[:16])
    msg["X-Micromoments-Decision"] = message.decision_id
    text = str(c.get("body", ""))
    if c.get("url"):
        text += f"\n\n{c.get('cta') or 'Open'}: {c['url']}"
    msg.set_content(text + "\n")
    return msg


class SmtpDeliverer:
    """Send each message as one SMTP session (simple and robust; SMTP is not the hot path)."""

    def __init__(self, host: str = "localhost", port: int = 25, sender: str = "micromoments@localhost", *,
                 starttls: bool = False, user: str = "", password: str = "", timeout: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.user, self.password, self.timeout = starttls, user, password, timeout

    def send(self, message: Message) -> str:
        if not message.to:
            raise DeliveryError(f"no email address known for {message.person_id}", retryable=False)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as s:
                if self.starttls:
                    s.starttls()
                if self.user:
                    s.login(self.user, self.password)
                s.send_message(build_email(message, self.sender))
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {exc}") from None
        return f"smtp://{self.host}:{self.port}/{message.to}"
