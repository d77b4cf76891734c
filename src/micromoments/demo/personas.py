"""The five hidden personas of the demo world, and how one person's traits are drawn from one.

Personas differ in moment mix, channels, devices, active hours and weekdays, conversion and
basket value, query style and store visits, so they can be recovered from behaviour. Each
person gets their own jittered copy of the persona's mixes (a Dirichlet draw around them),
so clusters overlap a little, as real segments do.

>>> sorted(PERSONAS)
['deal_hunter', 'garden_researcher', 'local_shopper', 'trade_pro', 'weekend_diy']
>>> abs(sum(p.share for p in PERSONAS.values()) - 1.0) < 1e-9
True
"""

from __future__ import annotations

from dataclasses import dataclass

WEB_CHANNELS = ("organic-search", "paid-search", "email", "social", "direct")


def _hours(*peaks: tuple[float, float, float], floor: float = 0.05) -> tuple[float, ...]:
    """24 hourly weights from (centre hour, width in hours, weight) bumps, plus a small floor."""
    import math

    out = []
    for h in range(24):
        w = floor if 7 <= h <= 22 else floor / 10
        for centre, width, weight in peaks:
            d = min(abs(h - centre), 24 - abs(h - centre))
            w += weight * math.exp(-0.5 * (d / width) ** 2)
        out.append(w)
    return tuple(out)


@dataclass(frozen=True)
class Persona:
    key: str
    label: str
    share: float
    moments: dict[str, float]           # know/go/do/buy
    go_local: float                     # share of go moments that are local (rest: site)
    channels: dict[str, float]          # entry channels of web sessions
    devices: dict[str, float]           # desktop/mobile/tablet for web sessions
    app_adoption: float                 # chance the person has the app
    app_session_share: float            # of the app users' sessions
    login_rate: float                   # chance the person has an account and logs in
    sessions_per_week: float
    hours: tuple[float, ...]            # 24 weights, local time
    weekdays: tuple[float, ...]         # Mon..Sun weights
    conversion: float                   # baseline chance a buy episode ends in an order
    basket: float                       # mean order value (store currency)
    items: float                        # mean line items per order
    styles: dict[str, float]            # query-style multipliers (see queries.STYLES)
    typo_rate: float
    video_rate: float                   # chance a do episode plays a video
    store_visit_rate: float             # chance a go/local episode ends in directions
    click_collect: float                # share of orders collected in store
    near_store_km: float                # how far from their store people live (scale)


PERSONAS: dict[str, Persona] = {
    p.key: p
    for p in (
        Persona(
            "weekend_diy", "Weekend DIY project planners", 0.24,
            moments={"do": 0.56, "buy": 0.22, "know": 0.12, "go": 0.10}, go_local=0.55,
            channels={"organic-search": 0.45, "social": 0.25, "direct": 0.18, "email": 0.07, "paid-search": 0.05},
            devices={"desktop": 0.66, "tablet": 0.14, "mobile": 0.20},
            app_adoption=0.20, app_session_share=0.25, login_rate=0.55, sessions_per_week=1.4,
            hours=_hours((9.5, 1.6, 1.0), (15, 2.0, 0.5), (20.5, 1.2, 0.35)),
            weekdays=(0.3, 0.25, 0.25, 0.3, 0.5, 2.8, 2.5),
            conversion=0.30, basket=120.0, items=3.0,
            styles={"question": 2.0, "longtail": 1.6, "voice": 0.4, "price": 0.5, "trade": 0.1, "nav": 0.6},
            typo_rate=0.06, video_rate=0.65, store_visit_rate=0.35, click_collect=0.2, near_store_km=14,
        ),
        Persona(
            "local_shopper", "Local store shoppers", 0.22,
            moments={"go": 0.52, "buy": 0.22, "know": 0.12, "do": 0.14}, go_local=0.88,
            channels={"organic-search": 0.50, "direct": 0.30, "social": 0.08, "paid-search": 0.08, "email": 0.04},
            devices={"mobile": 0.86, "tablet": 0.06, "desktop": 0.08},
            app_adoption=0.45, app_session_share=0.45, login_rate=0.35, sessions_per_week=1.3,
            hours=_hours((18.5, 1.4, 1.0), (12.5, 1.0, 0.35), (8, 1.0, 0.15)),
            weekdays=(0.9, 0.9, 0.9, 1.0, 1.3, 1.8, 0.9),
            conversion=0.14, basket=42.0, items=1.6,
            styles={"local": 2.2, "voice": 2.5, "entity": 1.4, "head": 1.2, "question": 0.6, "trade": 0.1},
            typo_rate=0.10, video_rate=0.25, store_visit_rate=0.85, click_collect=0.75, near_store_km=6,
        ),
        Persona(
            "deal_hunter", "Deal hunters", 0.20,
            moments={"buy": 0.62, "know": 0.14, "go": 0.10, "do": 0.14}, go_local=0.35,
            channels={"email": 0.40, "paid-search": 0.32, "social": 0.10, "organic-search": 0.12, "direct": 0.06},
            devices={"mobile": 0.55, "desktop": 0.35, "tablet": 0.10},
            app_adoption=0.35, app_session_share=0.35, login_rate=0.75, sessions_per_week=1.3,
            hours=_hours((12.7, 0.9, 0.8), (21.8, 1.3, 1.0), (7.8, 0.8, 0.25)),
            weekdays=(1.0, 1.0, 1.0, 1.1, 1.3, 0.8, 1.2),
            conversion=0.24, basket=58.0, items=2.2,
            styles={"price": 3.5, "head": 1.2, "entity": 1.0, "question": 0.4, "trade": 0.2, "voice": 0.5},
            typo_rate=0.07, video_rate=0.20, store_visit_rate=0.25, click_collect=0.25, near_store_km=15,
        ),
        Persona(
            "garden_researcher", "Garden enthusiasts and researchers", 0.19,
            moments={"know": 0.66, "do": 0.14, "buy": 0.12, "go": 0.08}, go_local=0.6,
            channels={"organic-search": 0.60, "email": 0.15, "social": 0.10, "direct": 0.12, "paid-search": 0.03},
            devices={"tablet": 0.55, "desktop": 0.33, "mobile": 0.12},
            app_adoption=0.08, app_session_share=0.3, login_rate=0.30, sessions_per_week=1.5,
            hours=_hours((10.5, 1.6, 1.0), (14.5, 1.5, 0.9), (19.5, 1.2, 0.3)),
            weekdays=(1.3, 1.4, 1.4, 1.3, 1.0, 0.4, 0.35),
            conversion=0.12, basket=36.0, items=1.8,
            styles={"question": 2.8, "voice": 1.6, "longtail": 1.4, "price": 0.3, "trade": 0.05, "entity": 0.5},
            typo_rate=0.05, video_rate=0.45, store_visit_rate=0.4, click_collect=0.3, near_store_km=18,
        ),
        Persona(
            "trade_pro", "Trade professionals", 0.15,
            moments={"buy": 0.56, "go": 0.20, "know": 0.18, "do": 0.06}, go_local=0.5,
            channels={"direct": 0.55, "email": 0.20, "organic-search": 0.15, "paid-search": 0.08, "social": 0.02},
            devices={"mobile": 0.60, "desktop": 0.35, "tablet": 0.05},
            app_adoption=0.85, app_session_share=0.75, login_rate=0.97, sessions_per_week=1.6,
            hours=_hours((6.8, 0.8, 1.0), (12.0, 0.7, 0.35), (16.5, 0.8, 0.25), floor=0.02),
            weekdays=(1.4, 1.4, 1.4, 1.4, 1.2, 0.35, 0.03),
            conversion=0.55, basket=420.0, items=3.5,
            styles={"trade": 4.0, "entity": 2.2, "head": 1.4, "question": 0.5, "voice": 0.2, "longtail": 0.5},
            typo_rate=0.08, video_rate=0.05, store_visit_rate=0.6, click_collect=0.55, near_store_km=25,
        ),
    )
}

PERSONA_KEYS: tuple[str, ...] = tuple(PERSONAS)
PERSONA_SHARES: tuple[float, ...] = tuple(p.share for p in PERSONAS.values())

# How the stage of the project shifts the persona's moment mix (multipliers).
STAGE_MOMENTS: dict[str, dict[str, float]] = {
    "awareness": {"know": 2.0, "do": 1.5, "buy": 0.5, "go": 0.6},
    "consideration": {"know": 1.2, "do": 1.0, "buy": 1.5, "go": 0.8},
    "decision": {"know": 0.4, "do": 0.5, "buy": 2.5, "go": 1.6},
    "post_purchase": {"know": 0.9, "do": 2.2, "buy": 0.4, "go": 1.2},
}
STAGES = tuple(STAGE_MOMENTS)

# Conversion multipliers by the session's channel.
CHANNEL_CONVERSION: dict[str, float] = {
    "email": 1.35, "paid-search": 1.15, "direct": 1.2, "organic-search": 0.9, "social": 0.6, "app": 1.4,
}
STAGE_CONVERSION: dict[str, float] = {"awareness": 0.35, "consideration": 0.8, "decision": 1.6, "post_purchase": 0.6}
