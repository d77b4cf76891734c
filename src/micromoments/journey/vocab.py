"""Which events mean purchase, cart, product view or support: the words the journey rules use.

Event names are compared lower-cased, so `Order Completed`, `order completed` and the
REES46 `purchase` all count. Change the lists in `micromoments.toml`
(`[journey] conversion_events = [...]`) or pass your own `EventVocabulary`.

>>> "purchase" in EventVocabulary().conversion_events
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

CONVERSION_EVENTS = (
    "order completed", "purchase", "purchased", "checkout completed", "order placed",
    "transaction", "subscription started", "booking completed",
)
CART_EVENTS = (
    "product added", "add_to_cart", "add to cart", "added to cart", "cart", "checkout started",
    "begin_checkout", "payment info entered",
)
PRODUCT_VIEW_EVENTS = (
    "product viewed", "view", "view_item", "product clicked", "select_item",
    "product list viewed", "products compared", "product compared",
)
SUPPORT_EVENTS = (
    "support ticket created", "contact support", "help viewed", "return requested",
    "order tracked", "support chat started",
)
SUPPORT_PATHS = ("/help", "/support", "/faq", "/how-to", "/returns", "/track-order", "/contact")


@dataclass
class EventVocabulary:
    """Event names (case-insensitive) and page paths that carry a journey meaning."""

    conversion_events: tuple[str, ...] = CONVERSION_EVENTS
    cart_events: tuple[str, ...] = CART_EVENTS
    product_view_events: tuple[str, ...] = PRODUCT_VIEW_EVENTS
    support_events: tuple[str, ...] = SUPPORT_EVENTS
    support_paths: tuple[str, ...] = field(default=SUPPORT_PATHS)

    def _name(self, t: ir.Table) -> ir.StringValue:
        return t.event.lower().strip()

    def is_conversion(self, t: ir.Table) -> ir.BooleanValue:
        return self._name(t).isin(list(self.conversion_events)).fill_null(False)

    def is_cart(self, t: ir.Table) -> ir.BooleanValue:
        return self._name(t).isin(list(self.cart_events)).fill_null(False)

    def is_product_view(self, t: ir.Table) -> ir.BooleanValue:
        return self._name(t).isin(list(self.product_view_events)).fill_null(False)

    def is_support(self, t: ir.Table) -> ir.BooleanValue:
        path = t.page_path.lower()
        by_path = ibis.literal(False)
        for prefix in self.support_paths:
            by_path = by_path | path.startswith(prefix).fill_null(False)
        return self._name(t).isin(list(self.support_events)).fill_null(False) | by_path


def vocabulary_from_config(config: object | None) -> EventVocabulary:
    """The vocabulary, with any lists overridden in `config.journey`."""
    vocab = EventVocabulary()
    journey = getattr(config, "journey", None)
    for name in ("conversion_events", "cart_events", "product_view_events", "support_events", "support_paths"):
        value = getattr(journey, name, None)
        if value:
            setattr(vocab, name, tuple(str(v).lower() for v in value))
    return vocab
