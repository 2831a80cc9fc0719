"""Rebuilds and reports run with the cyclic garbage collector paused, and give it back."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from projections.gc_pause import paused_gc, without_gc


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_during_a_report_and_on_after_it():
    gc.enable()
    seen = []

    @without_gc
    def report(x: int) -> int:
        seen.append(gc.isenabled())
        return x * 2

    assert report(21) == 42
    assert seen == [False]
    assert gc.isenabled()


def test_a_failing_report_gives_the_collector_back():
    gc.enable()

    @without_gc
    def report() -> None:
        raise ValueError("bad window")

    with pytest.raises(ValueError, match="bad window"):
        report()
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled():
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_reports_resume_the_collector_only_when_the_last_one_ends():
    gc.enable()
    first_in, second_done, release = threading.Event(), threading.Event(), threading.Event()
    during: list[bool] = []

    def first() -> None:
        with paused_gc():
            first_in.set()
            release.wait(10)
            during.append(gc.isenabled())

    def second() -> None:
        first_in.wait(10)
        with paused_gc():
            pass
        during.append(gc.isenabled())  # the first report is still running
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    second_done.wait(10)
    release.set()
    for thread in threads:
        thread.join(10)
    assert during == [False, False]
    assert gc.isenabled()


def test_every_report_runs_with_the_collector_paused(sqlite_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``Reports.run`` pauses it around any report (a collection costs a report ~30 ms at 10M)."""
    from ledger.application import open_ledger  # noqa: PLC0415
    from projections import api  # noqa: PLC0415
    from tests.factories import project_funnel  # noqa: PLC0415

    project_funnel(sqlite_url, 5, seed=1, months=2)
    seen: dict[str, bool] = {}
    for name, build in list(api.REPORTS.items()):
        def spy(reader, window, build=build, name=name):
            seen[name] = gc.isenabled()
            return build(reader, window)

        monkeypatch.setitem(api.REPORTS, name, spy)
    gc.enable()
    reports = api.Reports(open_ledger(sqlite_url).config)
    for name in api.REPORTS:
        reports.run(name)
    reports.close()
    assert seen == dict.fromkeys(api.REPORTS, False)
    assert gc.isenabled()
