"""Delivery routing: which playbooks push, to which deliverer, and the message handed to it.

Only channels that reach people outside the site (`INTERRUPTING`) fire from the event path;
web and app playbooks answer `decide()`. A channel without a deliverer (no URL or host in
`[activation]`) logs `no_channel` instead of sending. `PushRouting` (a base of `Activator`)
evaluates the playbooks by priority: the first one allowed to contact the person now (opt-outs,
consent, address, route, quiet hours, frequency caps) sends, one contact per event.

>>> from micromoments.config import Config
>>> sorted(default_deliverers(Config()))  # [activation] smtp_host defaults to localhost
['email']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from micromoments.activation.delivery import (
    Deliverer,
    DeliveryWorker,
    Message,
    PushDeliverer,
    SmtpDeliverer,
    WebhookDeliverer,
)
from micromoments.activation.decision import Decision, Decisions
from micromoments.activation.limits import FrequencyLedger, QuietHours
from micromoments.activation.playbooks import MatchContext, Playbook
from micromoments.activation.profile import ProfileState
from micromoments.config import Config

log = logging.getLogger(__name__)
INTERRUPTING = ("push", "email", "sms", "webhook")


def default_deliverers(config: Config) -> dict[str, Deliverer]:
    """The deliverers `[activation]` configures: `email` (SMTP), `push`, and `webhook:<name>` per URL."""
    act = config.activation
    out: dict[str, Deliverer] = {}
    if act.smtp_host:
        out["email"] = SmtpDeliverer(act.smtp_host, act.smtp_port, act.smtp_from, starttls=act.smtp_starttls,
                                     user=act.smtp_user, password=act.smtp_password)
    if act.push_url:
        out["push"] = PushDeliverer(act.push_url, act.webhook_secret)
    for name, url in act.webhook_urls.items():
        out[f"webhook:{name}"] = WebhookDeliverer(url, act.webhook_secret)
    return out


def has_route(deliverers: Mapping[str, Deliverer], pb: Playbook) -> bool:
    """Whether a deliverer takes this playbook's channel (a named webhook, or any webhook)."""
    ch = pb.action.channel
    if ch == "webhook":
        return f"webhook:{pb.action.webhook}" in deliverers or "webhook" in deliverers
    return ch in deliverers


def message_for(d: Decision, st: ProfileState, pb: Playbook) -> Message:
    """The message for a chosen, rendered decision: the address the channel needs, and its context."""
    ch = pb.action.channel
    return Message(decision_id=d.decision_id, person_id=st.person_id, channel=ch, content=d.content,
                   to=st.email if ch == "email" else st.push_token if ch == "push" else None,
                   playbook=pb.name, target=pb.action.webhook,
                   context={"moment": st.moment, "stage": st.stage, **d.context})


class PushRouting(Decisions):
    """The event path's sends (a base of `Activator`): the first playbook allowed to contact the
    person fires, its content is chosen and rendered, and the message goes to the delivery worker."""

    worker: DeliveryWorker
    deliverers: dict[str, Deliverer]
    ledger: FrequencyLedger
    _quiet: dict[str, QuietHours | None]

    def _fire(self, st: ProfileState, mc: MatchContext, event: Mapping[str, Any],
              store: dict[str, Any] | None, km: float | None, ts: datetime) -> list[Decision]:
        """Evaluate playbooks by priority; the first one within its limits sends (one contact per event)."""
        out: list[Decision] = []
        for pb in self.playbooks:
            ch = pb.action.channel
            if ch not in INTERRUPTING or not pb.when.matches(mc):
                continue
            status = self._blocked(st, pb, mc, ts)
            if status is None:
                items = self.catalog.candidates(moment=st.moment, stage=st.stage, persona=st.persona,
                                                channel=ch, ids=pb.action.content or None)
                if not items:
                    status = "no_content"
            d = self._new_decision(st, pb.name, ch, ts, mc, store, km)
            if status is not None:
                d.status = status
                self._log_decision(d)
                out.append(d)
                continue
            item, propensity = self._choose(items, d)
            d.content_id, d.propensity, d.status = item.id, propensity, "chosen"
            try:
                d.content = self.catalog.render(item, self._render_context(st, pb.name, store, km, event))
            except Exception as exc:  # a bad template (or a sandbox refusal) must not break the live path
                log.warning("content %s did not render: %s", item.id, exc)
                self._unchoose(d)
                d.status, d.context["error"] = "render_error", str(exc)[:200]
                self._log_decision(d)
                out.append(d)
                continue
            self._log_decision(d)
            self.ledger.record(st.person_id, ch, pb.name, ts)
            st.last_contact[ch] = ts
            st.last_decision = (d.decision_id, ts)
            self.worker.submit(message_for(d, st, pb))
            out.append(d)
            break
        return out

    def _blocked(self, st: ProfileState, pb: Playbook, mc: MatchContext, ts: datetime) -> str | None:
        """Why this playbook may not contact this person now (None: it may)."""
        ch = pb.action.channel
        if "all" in st.opted_out or ch in st.opted_out:
            return "opted_out"
        if st.consent is False or (self.config.activation.require_consent and st.consent is not True):
            return "no_consent"
        if ch == "email" and not st.email:
            return "no_address"
        if not has_route(self.deliverers, pb):
            return "no_channel"
        quiet = self._quiet.get(pb.name)
        if quiet is not None and mc.local is not None and quiet.contains(mc.local.time()):
            return "quiet_hours"
        if not self.ledger.allows(pb.limits.caps, st.person_id, ch, pb.name, ts):
            return "capped"
        return None
