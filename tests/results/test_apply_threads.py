"""Applying a model to one image uses one torch thread, but never leaves the server on one: two
sessions' calls that overlap restore the thread count the process had before either."""

from __future__ import annotations

import threading

import torch

from sslviz.results.apply import one_thread


def threads_of_a_new_thread() -> int:
    """What the next Streamlit script run (a new thread) would get."""
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_overlapping_calls_restore_the_thread_count() -> None:
    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
        inside: list[int] = []

        def first() -> None:
            with one_thread():
                inside.append(torch.get_num_threads())
                first_in.set()
                second_in.wait(30)
            first_out.set()

        def second() -> None:
            first_in.wait(30)
            with one_thread():
                inside.append(torch.get_num_threads())
                second_in.set()
                first_out.wait(30)  # the first call ends while this one is still inside

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert inside == [1, 1]
        assert threads_of_a_new_thread() == 2
    finally:
        torch.set_num_threads(original)
