"""Marketing and sales touches: what happens on each channel, who records it, what it costs.

Form fills come from the web forms, SDR calls and e-mails from the CRM, everything else from
marketing automation. Only some paid touches carry a cost: ad clicks (cost per click) and
syndicated downloads (cost per lead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.synthetic.facts import CURRENCY, money

if TYPE_CHECKING:
    from random import Random

    from adapters.synthetic.campaigns import Campaign

CAPTURE_TOUCH = {
    "paid_search": "form_fill",
    "paid_social": "form_fill",
    "webinar": "webinar_registered",
    "event": "event_scan",
    "content_syndication": "content_download",
    "email": "form_fill",
    "organic": "form_fill",
    "partner": "partner_referral",
    "outbound": "sdr_call",
}
LATER_TOUCHES = {
    "paid_search": (("ad_click", "form_fill"), (7, 3)),
    "paid_social": (("ad_click", "form_fill"), (5, 5)),
    "webinar": (("webinar_registered", "webinar_attended"), (4, 6)),
    "event": (("event_scan", "meeting_booked"), (8, 2)),
    "content_syndication": (("content_download",), (1,)),
    "email": (("email_click", "form_fill"), (17, 3)),
    "organic": (("page_visit", "form_fill", "demo_request"), (5, 4, 1)),
    "partner": (("partner_referral",), (1,)),
    "outbound": (("sdr_call", "sdr_email"), (1, 1)),
}
P_DEMO_REQUEST = 0.15  # of inbound form fills that bring in a new lead
COST_CENTS = {
    ("paid_search", "ad_click"): (350, 1_800),
    ("paid_social", "ad_click"): (250, 1_200),
    ("content_syndication", "content_download"): (4_500, 11_000),
}
WEB_TOUCHES = frozenset({"form_fill", "demo_request"})
SALES_TOUCHES = frozenset({"sdr_call", "sdr_email"})


def capture_touch(channel: str, rng: Random) -> str:
    """Return the touch that brings a new lead in through ``channel``."""
    touch = CAPTURE_TOUCH[channel]
    if touch == "form_fill" and channel in {"organic", "paid_search"}:
        return "demo_request" if rng.random() < P_DEMO_REQUEST else touch
    return touch


def later_touch(channel: str, rng: Random) -> str:
    """Draw a touch on a lead already known, through ``channel``."""
    touches, weights = LATER_TOUCHES[channel]
    return rng.choices(touches, weights=weights)[0]


def touch_source(touch_type: str, seller: str) -> tuple[str, str]:
    """Return (source, actor) of a touch: web forms, the CRM (``seller``) or the marketing tool."""
    if touch_type in WEB_TOUCHES:
        return "web", "system:web-forms"
    if touch_type in SALES_TOUCHES:
        return "salesforce", seller
    return "hubspot", "system:hubspot"


def touch_fields(campaign: Campaign, touch_type: str, rng: Random) -> dict[str, Any]:
    """Return the domain fields of a touch on ``campaign`` (with a cost if it is a paid one)."""
    channel = campaign.program.channel
    fields: dict[str, Any] = {
        "channel": channel,
        "touch_type": touch_type,
        "campaign_id": campaign.id,
    }
    cost = COST_CENTS.get((channel, touch_type))
    if cost is not None:
        fields["cost"] = money(rng.randint(*cost))
        fields["currency"] = CURRENCY
    return fields
