"""The app's background lanes (``sslviz.ui.background_work``): one request at a time on a real
thread, shared by key, a slot's waiting requests superseded by its newest, failures said."""

from __future__ import annotations

import threading

from waiting import wait_for

from sslviz.ui.background_work import Lane, WorkState


def test_a_burst_in_one_slot_computes_the_first_and_the_last() -> None:
    lane = Lane("test-lane")
    ran: list[str] = []
    release = threading.Event()

    def work(name: str, hold: bool = False):
        def run(state: WorkState) -> str:
            ran.append(name)
            if hold:
                release.wait(60)
            return name.upper()

        return run

    first = lane.submit("a", work("a", hold=True), slot="session 1")
    wait_for(lambda: first.stage == "starting", 30, 0.01)  # running: it is not superseded
    burst = [lane.submit(k, work(k), slot="session 1") for k in ("b", "c", "d")]
    other = lane.submit("x", work("x"), slot="session 2")  # another session's: kept
    release.set()
    wait_for(lambda: burst[-1].done and other.done, 30, 0.01)
    assert ran == ["a", "d", "x"]
    assert [s.superseded for s in burst] == [True, True, False]
    assert first.result == "A" and burst[-1].result == "D" and other.result == "X"
    assert lane.last("session 1") is burst[-1]
    assert lane.peek("b") is None  # dropped: asking for it again queues it anew


def test_a_request_is_shared_and_done_again_only_on_retry() -> None:
    lane = Lane("test-lane")
    calls: list[int] = []

    def work(state: WorkState) -> int:
        calls.append(1)
        return len(calls)

    state = lane.submit("k", work)
    wait_for(lambda: state.done, 30, 0.01)
    assert lane.submit("k", work) is state and calls == [1]
    again = lane.submit("k", work, retry=True)
    wait_for(lambda: again.done, 30, 0.01)
    assert again is not state and again.result == 2


def test_a_failure_is_said_in_one_line_and_the_lane_goes_on() -> None:
    lane = Lane("test-lane")

    def fails(state: WorkState) -> None:
        raise ValueError("the labels are odd\nsecond line")

    failed = lane.submit("bad", fails, slot="s")
    fine = lane.submit("good", lambda state: 7)
    wait_for(lambda: failed.done and fine.done, 30, 0.01)
    assert failed.error == "the labels are odd" and failed.stage == "failed"
    assert lane.last("s") is None  # a failure is never shown as the slot's predictions
    assert fine.result == 7


def test_ended_requests_beyond_keep_are_let_go() -> None:
    lane = Lane("test-lane", keep=2)
    states = [lane.submit(str(i), lambda state, i=i: i) for i in range(5)]
    wait_for(lambda: all(s.done for s in states), 30, 0.01)
    assert [k for k in map(str, range(5)) if lane.peek(k) is not None] == ["3", "4"]
