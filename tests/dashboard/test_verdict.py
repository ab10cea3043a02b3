"""The verdict's statistics and words (dashboard.verdict): known cases, not timings."""

import numpy as np
import pytest

from dashboard import verdict


def noisy_runs(ms, runs=3, steps=200, noise=0.05, run_spread=0.0, seed=0):
    """`runs` runs of per-step times around `ms` (lognormal step noise; each run's level shifted by
    a lognormal of sigma `run_spread`, as seeds and machine load shift it)."""
    rng = np.random.default_rng(seed)
    return [ms * rng.lognormal(0, run_spread) * rng.lognormal(0, noise, steps) for _ in range(runs)]


# --- speed ratios ---------------------------------------------------------------------------


@pytest.mark.parametrize("runs", [1, 3])
def test_identical_samples_give_an_interval_that_includes_one(runs):
    side = noisy_runs(10.0, runs=runs)
    ratio = verdict.speed_ratio(side, side)
    assert ratio.ratio == pytest.approx(1.0)
    assert ratio.low < 1.0 < ratio.high
    assert ratio.includes_one


def test_clearly_different_sides_give_an_interval_that_excludes_one():
    fast, slow = noisy_runs(10.0, seed=1), noisy_runs(15.0, seed=2)
    ratio = verdict.speed_ratio(fast, slow)
    assert ratio.ratio == pytest.approx(1.5, rel=0.05)
    assert 1.0 < ratio.low < ratio.ratio < ratio.high
    assert not ratio.includes_one
    backwards = verdict.speed_ratio(slow, fast)  # the slow side as subject: below 1, same verdict
    assert backwards.high < 1.0


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    fast, slow = noisy_runs(10.0, seed=1), noisy_runs(11.0, seed=2)
    first, again = verdict.speed_ratio(fast, slow, seed=7), verdict.speed_ratio(fast, slow, seed=7)
    assert (first.low, first.high) == (again.low, again.high)
    other = verdict.speed_ratio(fast, slow, seed=8)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.ratio == first.ratio  # the estimate itself is not resampled


def test_one_run_a_side_is_a_single_measurement_whose_interval_comes_from_its_steps():
    constant = verdict.speed_ratio([np.full(50, 10.0)], [np.full(50, 14.0)])
    assert constant.single
    assert (constant.low, constant.ratio, constant.high) == pytest.approx((1.4, 1.4, 1.4))  # no step noise
    noisy = verdict.speed_ratio(noisy_runs(10.0, runs=1, seed=1), noisy_runs(14.0, runs=1, seed=2))
    assert noisy.runs == (1, 1)
    assert noisy.low < noisy.ratio < noisy.high


def test_run_to_run_spread_widens_the_interval_beyond_the_steps_alone():
    """The hierarchical bootstrap sees that seed repeats disagree; steps alone would not."""
    steady = verdict.speed_ratio(noisy_runs(10.0, seed=1), noisy_runs(12.0, seed=2))
    shifting = verdict.speed_ratio(noisy_runs(10.0, run_spread=0.15, seed=1), noisy_runs(12.0, run_spread=0.15, seed=2))
    assert shifting.high - shifting.low > 3 * (steady.high - steady.low)


def test_the_median_shortcut_draws_what_resampling_every_step_would():
    """Drawing each resample's median from Beta order statistics matches building the resamples."""
    rng = np.random.default_rng(3)
    for steps in (1, 2, 7, 40, 41):
        times = np.sort(rng.lognormal(0, 1, steps))
        rows, lengths = verdict._padded([times])
        picks = np.zeros((40_000, 1), dtype=int)
        shortcut = verdict._resampled_medians(rows, lengths, picks, np.random.default_rng(4))[:, 0]
        brute = np.median(rng.choice(times, size=(40_000, steps)), axis=1)
        # the two distributions agree everywhere (a Kolmogorov-Smirnov distance within sampling noise)
        grid = np.union1d(times, (times[:-1] + times[1:]) / 2)
        cdf_shortcut = np.searchsorted(np.sort(shortcut), grid, side="right") / len(shortcut)
        cdf_brute = np.searchsorted(np.sort(brute), grid, side="right") / len(brute)
        assert np.abs(cdf_shortcut - cdf_brute).max() < 0.02


def test_runs_of_different_lengths_and_unusable_times():
    subject = [np.array([10.0, 10.0, np.nan, -1.0]), np.full(300, 10.0)]  # a NaN and a negative are left out
    ratio = verdict.speed_ratio(subject, [np.full(7, 20.0), np.array([np.inf])])
    assert ratio.runs == (2, 1)  # the baseline run with no usable time does not count
    assert ratio.ratio == pytest.approx(2.0)
    assert verdict.speed_ratio([np.array([])], [np.full(3, 1.0)]) is None
    assert verdict.speed_ratio([np.zeros(3)], [np.full(3, 1.0)]) is None  # no ratio to a zero time


def test_the_spread_is_the_pooled_median_and_quartiles():
    spread = verdict.spread([np.arange(1.0, 6.0), np.arange(6.0, 11.0)])
    assert (spread.q1, spread.median, spread.q3) == pytest.approx((3.25, 5.5, 7.75))


# --- accuracy differences -------------------------------------------------------------------


def test_accuracy_differences_over_seed_repeats():
    same = verdict.difference([0.90, 0.91, 0.89], [0.91, 0.90, 0.89])
    assert same.includes_zero
    apart = verdict.difference([0.98, 0.979, 0.981], [0.97, 0.971, 0.972])
    assert apart.difference == pytest.approx(0.009)
    assert 0 < apart.low < apart.difference < apart.high
    assert verdict.difference([0.9, 0.91], [0.8, 0.81], seed=1) == verdict.difference([0.9, 0.91], [0.8, 0.81], seed=1)


def test_one_run_a_side_has_no_accuracy_interval():
    single = verdict.difference([0.93], [0.95])
    assert (single.low, single.high, single.runs) == (None, None, (1, 1))
    assert single.difference == pytest.approx(-0.02)
    assert not single.includes_zero
    assert verdict.difference([], [0.9]) is None


def test_a_mean_with_its_interval_over_runs():
    assert verdict.mean_interval([0.5]) == (0.5, None, None)
    mean, low, high = verdict.mean_interval([0.03, 0.04, 0.05])
    assert mean == pytest.approx(0.04)
    assert low < mean < high


# --- words ----------------------------------------------------------------------------------


def test_a_clear_speed_verdict_shows_its_interval_and_what_it_rests_on():
    ratio = verdict.SpeedRatio(1.64, 1.52, 1.77, (3, 3), verdict.Spread(4.27, 4.1, 4.5), verdict.Spread(7.0, 6.8, 7.3))
    assert verdict.speed_sentence("static", "dynamic", ratio) == (
        "static is 1.64x faster than dynamic [1.52, 1.77]; 3 runs a side; "
        "ms per step 4.27 (IQR 4.10 to 4.50) vs 7.00 (IQR 6.80 to 7.30)"
    )
    slower = verdict.SpeedRatio(0.8, 0.7, 0.9, (2, 3), ratio.subject, ratio.baseline)
    assert verdict.speed_claim("a", "b", slower) == "a is 1.25x slower than b [1.11, 1.43]"
    assert "2 runs vs 3" in verdict.speed_sentence("a", "b", slower)


def test_an_interval_that_includes_one_says_there_is_no_measurable_difference():
    ratio = verdict.speed_ratio(noisy_runs(10.0), noisy_runs(10.0, seed=5))
    assert ratio.includes_one
    sentence = verdict.speed_sentence("static", "dynamic", ratio)
    assert sentence.startswith("static vs dynamic, speed: no measurable difference on this machine (static 1.")
    assert f"[{ratio.low:.2f}, {ratio.high:.2f}]" in sentence or "slower" in sentence


def test_one_run_a_side_says_it_is_a_single_measurement():
    ratio = verdict.speed_ratio([np.full(50, 10.0)], [np.full(50, 14.0)])
    sentence = verdict.speed_sentence("#1 static", "#2 dynamic", ratio)
    assert sentence.startswith("#1 static is 1.40x faster than #2 dynamic [1.40, 1.40]; single run per side")
    assert "a single measurement" in sentence
    accuracy = verdict.difference_text(verdict.difference([0.93], [0.95]))
    assert accuracy == "93.00% vs 95.00%, -2.00 pp (single run per side: no interval)"


def test_accuracy_words_give_the_interval_or_no_measurable_difference():
    found = verdict.Difference(0.98, 0.97, 0.005, 0.015, (3, 3))
    assert verdict.difference_text(found) == "98.00% vs 97.00%, +1.00 pp [+0.50, +1.50]"
    unclear = verdict.Difference(0.98, 0.97, -0.005, 0.015, (3, 3))
    assert verdict.difference_text(unclear).endswith(": no measurable difference on this machine")
    lopsided = verdict.Difference(0.98, 0.97, None, None, (1, 3))
    assert verdict.difference_text(lopsided).endswith("(a single run on one side: no interval)")


def test_a_row_sentence_joins_speed_and_accuracy_or_gives_what_there_is():
    ratio = verdict.speed_ratio([np.full(5, 10.0)], [np.full(5, 14.0)])
    found = verdict.difference([0.93], [0.95])
    both = verdict.row_sentence("a", "b", ratio, found)
    assert both.startswith("a is 1.40x faster than b")
    assert both.endswith(". Test accuracy 93.00% vs 95.00%, -2.00 pp (single run per side: no interval)")
    assert verdict.row_sentence("a", "b", None, found).startswith("a vs b, test accuracy 93.00%")
    assert verdict.row_sentence("a", "b", ratio, None) == verdict.speed_sentence("a", "b", ratio)
    assert verdict.row_sentence("a", "b", None, None) is None
