"""The comparison's verdict, with its uncertainty (numpy only: no Streamlit, no TensorFlow).

Every preset asks a ratio or a difference ("static is N x faster than dynamic", "SRU reaches
X% vs LSTM's Y%"). One number per side cannot say whether the difference is real: step times
on a shared machine are noisy, and seed repeats differ. So each figure comes with a 95%
bootstrap interval, and the words say when the interval cannot tell the sides apart.

- Speed: each run's figure is the median of its per-step times (medians, because a shared
  machine adds long stalls that a mean would follow); a side's figure is the median of its
  runs' figures; the verdict is the baseline's figure over the subject's (2.0 = the subject is
  twice as fast). The interval is a hierarchical bootstrap: resample each side's runs with
  replacement, then each chosen run's steps with replacement.
- Accuracy: each run's test accuracy; a side's figure is the mean over its runs (accuracies of
  seed repeats are not heavy-tailed, and with three runs the mean uses all of them); the
  verdict is the subject's minus the baseline's, in percentage points, with a bootstrap over
  runs. With one run a side there is nothing to resample: no interval.

Resampling is seeded, so the same runs give the same interval on every page load and for
every viewer of a shared link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class Spread:
    """Per-step milliseconds of one side, pooled over its runs: median and interquartile range."""

    median: float
    q1: float
    q3: float


@dataclass(frozen=True)
class SpeedRatio:
    """How many times faster the subject is than the baseline (ratio of median step times)."""

    ratio: float
    low: float
    high: float
    runs: tuple[int, int]  # (subject, baseline)
    subject: Spread
    baseline: Spread

    @property
    def includes_one(self) -> bool:
        """The interval cannot tell the sides apart."""
        return self.low <= 1.0 <= self.high

    @property
    def single(self) -> bool:
        """One run a side: a single measurement, whose interval holds the step-to-step noise only."""
        return self.runs == (1, 1)


@dataclass(frozen=True)
class Difference:
    """The subject's figure minus the baseline's (means over runs); no interval with one run on a side."""

    subject: float
    baseline: float
    low: float | None
    high: float | None
    runs: tuple[int, int]

    @property
    def difference(self) -> float:
        return self.subject - self.baseline

    @property
    def includes_zero(self) -> bool:
        return self.low is not None and self.high is not None and self.low <= 0.0 <= self.high


# --- statistics ---------------------------------------------------------------------------


def _quantiles(ordered: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Quantiles of sorted values, linearly interpolated as np.percentile does by default, without
    its overhead per call (a hundred calls for a page of 20 runs compared with a baseline)."""
    position = np.asarray(fractions, dtype=float) * (len(ordered) - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, len(ordered) - 1)
    weight = position - below
    return ordered[below] * (1.0 - weight) + ordered[above] * weight


def _sorted(values: np.ndarray) -> np.ndarray:
    """The values in order; sorted already (the usual case: runs are sorted once, then compared with
    a baseline row after row) they are returned as they are, at the cost of one comparison pass."""
    return values if bool(np.all(values[1:] >= values[:-1])) else np.sort(values)


def spread(runs: Sequence[npt.ArrayLike]) -> Spread:
    """Median and quartiles of every step time of a side, pooled over its runs."""
    arrays = [np.asarray(times, dtype=float) for times in runs]
    pooled = _sorted(np.concatenate(arrays))
    q1, median, q3 = _quantiles(pooled, (0.25, 0.5, 0.75))
    return Spread(float(median), float(q1), float(q3))


def _padded(runs: Sequence[npt.ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """Each run's step times sorted, as the rows of one NaN-padded array, and their lengths."""
    sorted_runs = [_sorted(np.asarray(times, dtype=float)) for times in runs]
    lengths = np.array([len(times) for times in sorted_runs])
    rows = np.full((len(sorted_runs), lengths.max()), np.nan)
    for row, times in zip(rows, sorted_runs):
        row[: len(times)] = times
    return rows, lengths


def _quantile_index(u: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Where the empirical quantile u of a sorted run of `lengths` values sits (its inverse CDF)."""
    return np.minimum((u * lengths).astype(np.int64), lengths - 1)


def _resampled_medians(
    rows: np.ndarray, lengths: np.ndarray, picks: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For every picked run, the median of one bootstrap resample of its steps, without building it.

    A resample of m values is the empirical inverse CDF applied to m uniforms, and that map keeps
    order: the resample's k-th smallest value is the inverse CDF at the k-th smallest uniform,
    which is Beta(k, m - k + 1) distributed. (For an even m, the next uniform up is the least of
    the m - k above it: u + (1 - u) * B with B ~ Beta(1, m - k), drawn as 1 - V ** (1 / (m - k)) from
    a uniform V.) So one Beta number (and a uniform) per run gives exactly the bootstrap distribution
    of its median, at a cost that does not grow with its number of steps: 1,000 resamples of 20
    runs of 500 steps draw 20,000 numbers, not 10 million.
    """
    m = lengths[picks]
    k = (m + 1) // 2
    u_low = rng.beta(k, m - k + 1)
    u_high = u_low.copy()
    even = m % 2 == 0
    above = (m - k)[even]
    u_high[even] += (1.0 - u_low[even]) * (1.0 - rng.random(above.shape) ** (1.0 / above))
    low = rows[picks, _quantile_index(u_low, m)]
    high = rows[picks, _quantile_index(u_high, m)]
    return (low + high) / 2.0


def _side_figure(sorted_runs: Sequence[np.ndarray]) -> float:
    """A side's figure: the median of its runs' median step times (each run sorted already)."""
    medians = np.sort([_quantiles(times, (0.5,))[0] for times in sorted_runs])
    return float(_quantiles(medians, (0.5,))[0])


def side_medians(runs: Sequence[npt.ArrayLike], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` bootstrap draws of a side's figure (the median of its runs' median step times):
    runs resampled with replacement, then each chosen run's steps."""
    rows, lengths = _padded(runs)
    if len(runs) == 1:  # a single run: nothing to pick, only its steps to resample
        return _resampled_medians(rows, lengths, np.zeros((resamples, 1), dtype=np.int64), rng)[:, 0]
    picks = rng.integers(0, len(runs), size=(resamples, len(runs)))
    return np.median(_resampled_medians(rows, lengths, picks, rng), axis=1)


def _usable(runs: Sequence[npt.ArrayLike]) -> list[np.ndarray]:
    """The runs with at least one finite, non-negative step time, keeping only those times, sorted."""
    arrays = [np.asarray(times, dtype=float) for times in runs]
    kept = [_sorted(times[np.isfinite(times) & (times >= 0)]) for times in arrays]
    return [times for times in kept if len(times)]


def mean_interval(
    values: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL
) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of one value per run, the interval bootstrapped over runs; with a single
    run there is nothing to resample and low and high are None."""
    finite = np.array([value for value in values if np.isfinite(value)], dtype=float)
    if len(finite) < 2:
        return (float(finite[0]) if len(finite) else float("nan")), None, None
    draws = np.random.default_rng(seed).choice(finite, size=(resamples, len(finite))).mean(axis=1)
    low, high = _interval(draws, level)
    return float(finite.mean()), low, high


def _interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = _quantiles(np.sort(draws), (tail, 1.0 - tail))
    return float(low), float(high)


def speed_ratio(
    subject: Sequence[npt.ArrayLike],
    baseline: Sequence[npt.ArrayLike],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> SpeedRatio | None:
    """The baseline's median step time over the subject's, with a hierarchical bootstrap interval.

    Each side is a list of runs, each run its per-step times (any unit, the same for both sides).
    None when a side has no step times, or a side's median is zero (no ratio to give).
    """
    subject, baseline = _usable(subject), _usable(baseline)
    if not subject or not baseline:
        return None
    subject_figure, baseline_figure = _side_figure(subject), _side_figure(baseline)
    if subject_figure <= 0 or baseline_figure <= 0:
        return None
    rng = np.random.default_rng(seed)
    subject_draws = side_medians(subject, resamples, rng)
    baseline_draws = side_medians(baseline, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = baseline_draws / subject_draws
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):  # every resample hit a zero step time: no interval to give
        return None
    low, high = _interval(ratios, level)
    return SpeedRatio(
        baseline_figure / subject_figure, low, high, (len(subject), len(baseline)), spread(subject), spread(baseline)
    )


def difference(
    subject: Sequence[float],
    baseline: Sequence[float],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> Difference | None:
    """The subject's mean minus the baseline's (one value per run: a test accuracy, say), with a
    bootstrap over runs when both sides have several; None when a side has no finite value."""
    subject_values = np.array([value for value in subject if np.isfinite(value)], dtype=float)
    baseline_values = np.array([value for value in baseline if np.isfinite(value)], dtype=float)
    if not len(subject_values) or not len(baseline_values):
        return None
    runs = (len(subject_values), len(baseline_values))
    low = high = None
    if min(runs) > 1:
        rng = np.random.default_rng(seed)
        subject_draws = rng.choice(subject_values, size=(resamples, runs[0])).mean(axis=1)
        baseline_draws = rng.choice(baseline_values, size=(resamples, runs[1])).mean(axis=1)
        low, high = _interval(subject_draws - baseline_draws, level)
    return Difference(float(subject_values.mean()), float(baseline_values.mean()), low, high, runs)


# --- words --------------------------------------------------------------------------------

NO_DIFFERENCE = "no measurable difference on this machine"


def runs_text(runs: tuple[int, int]) -> str:
    """How much the figure rests on: "3 runs a side", "2 runs vs 3", or a single measurement."""
    if runs == (1, 1):
        return "single run per side: a single measurement, its interval holds only the step-to-step noise"
    if runs[0] == runs[1]:
        return f"{runs[0]} runs a side"
    return f"{runs[0]} {'run' if runs[0] == 1 else 'runs'} vs {runs[1]}"


def ratio_text(ratio: SpeedRatio, than: str = "") -> str:
    """ "1.64x faster [1.52, 1.77]", or "1.25x slower [1.10, 1.41]" (the interval turned the same way);
    with `than`, "1.64x faster than dynamic [1.52, 1.77]"."""
    than = f" than {than}" if than else ""
    if ratio.ratio >= 1:
        return f"{ratio.ratio:.2f}x faster{than} [{ratio.low:.2f}, {ratio.high:.2f}]"
    return f"{1 / ratio.ratio:.2f}x slower{than} [{1 / ratio.high:.2f}, {1 / ratio.low:.2f}]"


def _spreads(ratio: SpeedRatio) -> str:
    subject, baseline = ratio.subject, ratio.baseline
    return (
        f"ms per step {subject.median:.2f} (IQR {subject.q1:.2f} to {subject.q3:.2f}) "
        f"vs {baseline.median:.2f} (IQR {baseline.q1:.2f} to {baseline.q3:.2f})"
    )


def speed_claim(subject: str, baseline: str, ratio: SpeedRatio) -> str:
    """ "static is 1.64x faster than dynamic [1.52, 1.77]", or, when the interval includes 1, that
    this machine shows no difference (with the figure, so the reader sees how close it came)."""
    if ratio.includes_one:
        return f"{subject} vs {baseline}, speed: {NO_DIFFERENCE} ({subject} {ratio_text(ratio)})"
    return f"{subject} is {ratio_text(ratio, baseline)}"


def speed_sentence(subject: str, baseline: str, ratio: SpeedRatio) -> str:
    """The speed verdict in words, with its interval, what it rests on and both sides' spread."""
    return f"{speed_claim(subject, baseline, ratio)}; {runs_text(ratio.runs)}; {_spreads(ratio)}"


def percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def difference_text(found: Difference) -> str:
    """ "89.10% vs 89.40%, -0.30 pp [-1.02, 0.51]: no measurable difference on this machine"."""
    text = f"{percent(found.subject)} vs {percent(found.baseline)}, {found.difference * 100:+.2f} pp"
    if found.low is None or found.high is None:
        single = "single run per side" if found.runs == (1, 1) else "a single run on one side"
        return f"{text} ({single}: no interval)"
    text += f" [{found.low * 100:+.2f}, {found.high * 100:+.2f}]"
    return f"{text}: {NO_DIFFERENCE}" if found.includes_zero else text


def row_sentence(subject: str, baseline: str, ratio: SpeedRatio | None, found: Difference | None) -> str | None:
    """One sentence per compared row: the speed verdict, then the test-accuracy one (either may be
    missing: a run with no step clock yet, a series run); None when there is neither."""
    if ratio is None and found is None:
        return None
    if found is None:
        return speed_sentence(subject, baseline, ratio) if ratio else None
    if ratio is None:
        return f"{subject} vs {baseline}, test accuracy {difference_text(found)}"
    return f"{speed_sentence(subject, baseline, ratio)}. Test accuracy {difference_text(found)}"
