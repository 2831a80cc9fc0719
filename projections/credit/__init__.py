"""Credit: multi-touch attribution, sourced-by, pipeline-to-spend and revenue (docs/credit.md).

Layout: ``tables`` (the projection tables credit adds) and ``derive`` (how they are derived from
a subject's facts, with the funnel's exactly-once machinery); ``data`` (reading them as known at
a ledger time); ``models``, ``allocation`` and ``journeys`` (who gets credit for one deal, to
the cent); ``options`` (what a credit report is asked); the reports ``attribution``, ``spend``,
``sourced`` and ``revenue``; and ``audit`` (one deal's credit, traced to its touches).
"""
