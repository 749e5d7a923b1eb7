"""Round-paired block bootstrap (numpy only): ratios of medians and differences of slopes, resampled by round."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "Replicates",
    "divided",
    "generator",
    "highest",
    "iid_median_replicates",
    "median_replicates",
    "percentile",
    "quantiles",
    "slope",
    "slope_replicates",
]

_Array = npt.NDArray[np.float64]
Replicates = _Array
# One run's kept values by round, as harness.compare.performance.Rounds (which cannot be imported here: it
# imports this module where it compares).
_Rounds = Mapping[int, Sequence[float]]
# Replicates are drawn in chunks so that at most this many values are held at once (max_rounds = 1000 with
# blocks of 20 and 20000 resamples would otherwise need gigabytes).
_CHUNK_VALUES = 4_000_000


def generator(metric: str, seed: int) -> np.random.Generator:
    """A generator seeded from the metric id and `seed` through SHA-256 (never hash(): it is salted per process)."""
    digest = hashlib.sha256(f"patchgate.bootstrap\0{metric}\0{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def percentile(replicates: _Array, q: float) -> float:
    """The q-quantile (0..1) of bootstrap replicates, NaN ones left out (percentile method, Efron & Tibshirani ch. 13)."""
    finite = replicates[np.isfinite(replicates)]
    return float(np.quantile(finite, q)) if finite.size else float("nan")


def quantiles(
    values: Sequence[float], probabilities: Sequence[float], most: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The values' quantiles at `probabilities`, and the values themselves (sorted) or, past `most` of them, `most`
    quantiles at evenly spaced probabilities."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    points = ordered if ordered.size <= most else np.quantile(ordered, np.linspace(0.0, 1.0, most))
    return tuple(float(q) for q in np.quantile(ordered, probabilities)), tuple(float(p) for p in points)


def divided(top: _Array, bottom: _Array) -> _Array:
    """Replicates divided element by element; a 0 below gives inf or NaN (which `percentile` leaves out), unsaid."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return top / bottom


def highest(replicates: Sequence[_Array]) -> _Array:
    """The element-wise maximum of replicates of equal length."""
    out: _Array = np.max(np.stack(replicates), axis=0)
    return out


def _padded(rounds: _Rounds, keys: Sequence[int]) -> _Array:
    """A (len(keys), m) array of each round's values, NaN-padded to the longest round."""
    width = max((len(rounds[k]) for k in keys), default=0)
    out = np.full((len(keys), max(width, 1)), np.nan)
    for i, k in enumerate(keys):
        out[i, : len(rounds[k])] = rounds[k]
    return out


def _row_medians(values: _Array) -> _Array:
    """The median of each row, NaN padding left out (np.sort puts NaN last; np.nanmedian is a Python loop)."""
    ordered = np.sort(values, axis=1)
    n = np.sum(~np.isnan(ordered), axis=1)
    low = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, np.maximum(n // 2, 0)[:, None], axis=1)[:, 0]
    return np.where(n > 0, (low + high) / 2, np.nan)


def _draws(rng: np.random.Generator, resamples: int, rounds: int) -> npt.NDArray[np.int64]:
    """(resamples, rounds) round positions drawn with replacement: the same draw serves every run (the pairing)."""
    return rng.integers(0, rounds, size=(resamples, rounds))


def median_replicates(
    runs: Mapping[str, _Rounds], keys: Sequence[int], rng: np.random.Generator, resamples: int
) -> dict[str, _Array]:
    """Per run, `resamples` medians of all values of K rounds drawn with replacement from `keys`, the same for all runs.

    Resampling whole rounds keeps the correlation inside a round (Künsch 1989); drawing the same rounds for every
    run keeps each round's shared conditions (the slow minute all variants took turns in) on both sides of a ratio.
    """
    padded = {name: _padded(rounds, keys) for name, rounds in runs.items()}
    draws = _draws(rng, resamples, len(keys))
    width = sum(p.shape[1] for p in padded.values()) * len(keys)
    step = max(1, _CHUNK_VALUES // max(width, 1))
    out = {name: np.empty(resamples) for name in runs}
    for start in range(0, resamples, step):
        chunk = draws[start : start + step]
        for name, values in padded.items():
            out[name][start : start + len(chunk)] = _row_medians(values[chunk].reshape(len(chunk), -1))
    return out


def iid_median_replicates(
    runs: Mapping[str, Sequence[float]], rng: np.random.Generator, resamples: int
) -> dict[str, _Array]:
    """Per run, medians of its values resampled one by one, each run on its own: the naive bootstrap.

    Not used for decisions: it treats values of one slow minute as independent, which is what the round pairing
    exists to avoid; tests and benchmarks use it to show the difference.
    """
    out: dict[str, _Array] = {}
    for name, values in runs.items():
        data = np.asarray(values, dtype=np.float64)
        out[name] = np.median(data[rng.integers(0, data.size, size=(resamples, data.size))], axis=1)
    return out


def slope_replicates(
    runs: Mapping[str, Mapping[int, Sequence[tuple[float, float]]]],
    keys: Sequence[int],
    rng: np.random.Generator,
    resamples: int,
) -> dict[str, _Array]:
    """Per run, least-squares slopes of y over x on the (x, y) points of the same drawn rounds (NaN: x all equal)."""
    draws = _draws(rng, resamples, len(keys))
    out: dict[str, _Array] = {}
    for name, rounds in runs.items():
        xs = _padded({k: [p[0] for p in rounds[k]] for k in keys}, keys)
        ys = _padded({k: [p[1] for p in rounds[k]] for k in keys}, keys)
        x, y = xs[draws].reshape(resamples, -1), ys[draws].reshape(resamples, -1)
        out[name] = _slopes(x, y)
    return out


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of y over x (NaN when every x is the same)."""
    data = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return float(_slopes(data[None, :, 0], data[None, :, 1])[0])


def _slopes(x: _Array, y: _Array) -> _Array:
    """Row-wise least-squares slopes, NaN padding left out."""
    mask = ~np.isnan(x)
    n = mask.sum(axis=1)
    x0, y0 = np.where(mask, x, 0.0), np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = x0.sum(axis=1) / n, y0.sum(axis=1) / n
        dx = np.where(mask, x0 - mx[:, None], 0.0)
        sxx = (dx * dx).sum(axis=1)
        sxy = (dx * np.where(mask, y0 - my[:, None], 0.0)).sum(axis=1)
        # A relative floor: x values equal up to rounding count as equal, so no slope from a 0/0.
        flat = sxx <= 1e-12 * np.maximum((x0 * x0).sum(axis=1), 1e-300)
        return np.where(flat, np.nan, sxy / np.where(flat, 1.0, sxx))
