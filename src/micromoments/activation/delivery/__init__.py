"""Delivery: signed webhooks, push (FCM/APNs-shaped JSON over a webhook), email over SMTP, and the
background worker that retries with exponential backoff and dead-letters what keeps failing.

- `WebhookDeliverer(url, secret)`, `sign(secret, body)`, `verify_signature(secret, body, header)`
- `PushDeliverer(url, secret)`: the same signed POST, body shaped like an FCM HTTP v1 message
  with an `apns` block.
- `SmtpDeliverer(host, port, sender)`: plain-text email with smtplib.
- `DeliveryWorker(deliverers, log_sink=...)`: `submit(message)` returns at once.
"""

from micromoments.activation.delivery.base import Deliverer, DeliveryError, Message
from micromoments.activation.delivery.push import PushDeliverer, push_payload
from micromoments.activation.delivery.smtp import SmtpDeliverer
from micromoments.activation.delivery.webhook import WebhookDeliverer, sign, verify_signature
from micromoments.activation.delivery.worker import DeliveryWorker

__all__ = ["Deliverer", "DeliveryError", "DeliveryWorker", "Message", "PushDeliverer", "SmtpDeliverer",
           "WebhookDeliverer", "push_payload", "sign", "verify_signature"]
