"""The total deadline every remote call runs under (``retry.within``): a value, the call's own error, or Overdue."""

from __future__ import annotations

import threading

import pytest

from digest.retry import Overdue, RetryPolicy, Transient, within


def test_within_returns_the_value_or_raises_the_calls_own_error() -> None:
    assert within(5.0, lambda: 42, "t") == 42

    def boom() -> int:
        raise ValueError("bad answer")

    with pytest.raises(ValueError, match="bad answer"):
        within(5.0, boom, "t")


def test_a_call_that_never_returns_is_overdue_and_left_behind() -> None:
    release = threading.Event()
    with pytest.raises(Overdue, match=r"no answer within 0\.2s"):
        within(0.2, release.wait, "stuck")  # a server that trickles for ever
    release.set()  # the abandoned daemon thread ends on its own


def test_overdue_is_not_retried_by_the_policy() -> None:
    calls = []

    def once() -> None:
        calls.append(1)
        raise Overdue("no answer within 1s")

    with pytest.raises(Overdue):
        RetryPolicy(3, 0.0).call(once, "x")
    assert calls == [1]  # only Transient is retried
    assert not isinstance(Overdue("x"), Transient)
