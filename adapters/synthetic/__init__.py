"""Seeded, realistic synthetic funnel data for a mid-size B2B SaaS company.

``generate(20_000)`` tells the story of 20,000 leads over 24 months (about 230,000 canonical
records): 44 campaigns on nine channels with their monthly spend, accounts in three segments,
leads with touches, scores (the scoring model changes in month 13), stage changes from inquiry to
won or lost, hand-offs, SLAs, rejections, recycles and re-entries, opportunities, contracts with
expansion, contraction and churn, and the corrections and messy data of a real CRM. The same
arguments always give the same records; the stream is built one lead at a time.

Stage conversion (cohorts, "ever reached", skips count as reaching): inquiry -> mql about 34 %,
mql -> sal about 70 %, sal -> sql about 55 %, sql -> sqo about 70 %, win rate about 25 %.

Layout: ``world`` (shared setting), ``clock`` (time), ``campaigns``, ``accounts``, ``leads``
(the funnel) and ``lead_writer`` (how a lead's facts are written), ``deals`` and ``revenue``
(opportunities and contracts), ``touches``, ``facts`` (records and their ids), ``corrections``
(corrections and late delivery), ``stream`` (:func:`generate`), ``jsonl`` (:func:`write_jsonl`),
``reference`` (names, picklists and every rate).
"""

from __future__ import annotations

from adapters.synthetic.jsonl import write_jsonl
from adapters.synthetic.stream import generate

__all__ = ["generate", "write_jsonl"]
