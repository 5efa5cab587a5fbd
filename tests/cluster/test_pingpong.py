"""The Hockney fit and slow-link detection (serial)."""

from __future__ import annotations

import numpy as np
import pytest

from pimpi.cluster.pingpong import default_iterations, fit_hockney, slow_links


def test_fit_hockney_recovers_alpha_and_beta():
    alpha, beta = 50e-6, 1 / 110e6  # a Pi 4 on gigabit Ethernet
    sizes = [1 << k for k in range(0, 23, 2)]
    times = [alpha + n * beta for n in sizes]
    got_alpha, got_beta = fit_hockney(sizes, times)
    assert got_alpha == pytest.approx(alpha, rel=1e-6)
    assert got_beta == pytest.approx(beta, rel=1e-6)


def test_fit_hockney_with_noise_keeps_alpha_from_the_small_messages():
    rng = np.random.default_rng(7)
    alpha, beta = 20e-6, 1 / 1e9
    sizes = np.array([1 << k for k in range(0, 25)])
    times = (alpha + sizes * beta) * rng.uniform(0.95, 1.05, sizes.size)
    got_alpha, got_beta = fit_hockney(sizes, times)
    assert got_alpha == pytest.approx(alpha, rel=0.1)
    assert got_beta == pytest.approx(beta, rel=0.1)


@pytest.mark.parametrize("sizes, times, needle", [
    ([8, 8], [1e-6, 1e-6], "two different sizes"),
    ([8, 16], [1e-6], "one length"),
    ([8, 16], [1e-6, 0.0], "positive"),
])
def test_fit_hockney_refuses_bad_input(sizes, times, needle):
    with pytest.raises(ValueError, match=needle):
        fit_hockney(sizes, times)


def test_slow_links_against_the_median():
    lat = [[None, 1.0, 1.1, 0.9], [1.0, None, 5.0, 1.0], [1.1, 5.0, None, 1.2], [0.9, 1.0, 1.2, None]]
    assert [(s["a"], s["b"]) for s in slow_links(lat, 3.0)] == [(1, 2)]
    assert slow_links(lat, 6.0) == []
    bw = [[None, 100.0, 10.0], [100.0, None, 100.0], [10.0, 100.0, None]]
    assert [(s["a"], s["b"]) for s in slow_links(bw, 3.0, higher_is_slower=False)] == [(0, 2)]
    assert slow_links([[None, 1.0], [1.0, None]]) == []  # one link: no baseline
    with pytest.raises(ValueError, match="factor"):
        slow_links(lat, 1.0)


def test_default_iterations_shrink_with_size():
    small, large, huge = default_iterations(8), default_iterations(1 << 16), default_iterations(1 << 22)
    assert small[1] > large[1] > huge[1] >= 1


class _FakeComm:
    """Enough of a communicator for argument checks, which happen before any message."""

    def Get_size(self):
        return 3

    def Get_rank(self):
        return 0


@pytest.mark.parametrize("a, b, sizes, kwargs, needle", [
    (0, 0, [8], {}, "two different ranks"),
    (0, 3, [8], {}, "rank in 0..2, got 3"),
    (-1, 1, [8], {}, "got -1"),
    (0, 1, [], {}, "sizes is empty"),
    (0, 1, [8, -4], {}, "got -4"),
    (0, 1, [8], {"loops": 0}, "loops must be a positive integer, got 0"),
    (0, 1, [8], {"skip": -1}, "skip must be a non-negative integer, got -1"),
])
def test_pingpong_refuses_bad_arguments_before_sending(a, b, sizes, kwargs, needle):
    from pimpi.cluster.pingpong import pingpong

    with pytest.raises(ValueError, match=needle):
        pingpong(_FakeComm(), a, b, sizes, **kwargs)
