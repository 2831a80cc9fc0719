"""The generated stream: campaigns first, then lead after lead, late facts released on the way.

Memory stays constant whatever the number of leads: one lead's story is built at a time, and the
late facts waiting for release are a small, bounded buffer.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import date
from typing import TYPE_CHECKING

from adapters.synthetic.corrections import release
from adapters.synthetic.leads import LeadStory
from adapters.synthetic.world import World

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adapters.synthetic.facts import Record


def generate(
    leads: int, *, seed: int = 7, start: date = date(2024, 11, 1), months: int = 24
) -> Iterator[Record]:
    """Yield canonical records (dicts that ``parse_fact`` accepts), streaming in constant memory."""
    if leads < 0:
        raise ValueError(f"leads must be zero or more, got {leads}")
    if months < 1:
        raise ValueError(f"months must be one or more, got {months}")
    return _stream(World(leads, seed, start, months))


def _stream(world: World) -> Iterator[Record]:
    yield from world.campaign_records()
    waiting: list[tuple[int, int, Record]] = []  # (release after lead, arrival order, record)
    order = itertools.count()
    for number in range(1, world.leads + 1):
        story = LeadStory(world, number)
        block = story.run()
        now, late = release(block, story.rng, story.key)
        yield from now
        for delay, record in late:
            heapq.heappush(waiting, (number + delay, next(order), record))
        while waiting and waiting[0][0] <= number:
            yield heapq.heappop(waiting)[2]
    while waiting:
        yield heapq.heappop(waiting)[2]
