"""The one verdict engine: numbers in, a verdict and the rule that produced it out.

It knows nothing about models. Notebooks measure, then hand this module paired per-seed values or a measured
quantity with the paper's threshold; the verdict (and a one-line statement of the rule that gave it) comes back.
No notebook decides a verdict with its own ``if``.

Vocabulary (``VERDICTS``):

- **reproduced**: the evidence is on the paper's side, beyond the noise (a paired interval that excludes zero
  on the paper's side with at least ``MIN_SEEDS`` seeds, or a threshold met with margin);
- **partly**: part of a composite claim holds and part clearly does not, or a real effect that is smaller than
  the declared minimum;
- **not reproduced**: enough seeds to say the effect is reversed (interval on the other side), absent (interval
  inside the declared equivalence margin), or a threshold missed beyond its tolerance;
- **inconclusive**: fewer than ``MIN_SEEDS`` seeds, or an interval that covers zero (or straddles a threshold);
- **not tested**: this run does not measure the claim (the reason is recorded).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive", "not tested")
MIN_SEEDS = 3
LEVEL = 0.95


@dataclass(frozen=True)
class Evidence:
    """A verdict with the numbers and the rule behind it; ``claim`` rows carry one."""
    verdict: str
    rule: str
    detail: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# paired comparisons over seeds


@dataclass(frozen=True)
class Paired:
    """``a`` against ``b`` on one metric, paired by seed; gaps are signed so that > 0 means ``a`` is better."""
    a: str
    b: str
    metric: str
    gaps: tuple
    seeds: tuple
    higher_is_better: bool
    level: float
    lo: float
    hi: float

    @property
    def n(self) -> int:
        return len(self.gaps)

    @property
    def mean(self) -> float:
        return float(np.mean(self.gaps)) if self.gaps else float("nan")

    @property
    def sd(self) -> float:
        return float(np.std(self.gaps, ddof=1)) if self.n > 1 else float("nan")

    @property
    def wins(self) -> int:
        return int(sum(g > 0 for g in self.gaps))

    def text(self, digits: int = 4) -> str:
        ci = f"[{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]" if math.isfinite(self.lo) else "[no interval]"
        return (f"{self.a} vs {self.b} on {self.metric}: gap {self.mean:+.{digits}f}, {int(self.level * 100)}% CI {ci}, "
                f"{self.a} better in {self.wins}/{self.n} seeds")

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "metric": self.metric, "mean": self.mean, "sd": self.sd, "lo": self.lo,
                "hi": self.hi, "wins": self.wins, "n": self.n, "level": self.level, "gaps": list(self.gaps),
                "seeds": list(self.seeds), "higher_is_better": self.higher_is_better}


def _t_quantile(p: float, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(p, df))


def interval(gaps: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean of paired gaps; (nan, nan) with fewer than 2 gaps.

    With 3-10 seeds the t interval is the honest choice: a bootstrap over so few values is far too narrow.
    Identical gaps (zero spread) give a zero-width interval at the mean.
    """
    g = np.asarray(gaps, dtype=float)
    if len(g) < 2:
        return float("nan"), float("nan")
    half = _t_quantile(0.5 + level / 2, len(g) - 1) * g.std(ddof=1) / math.sqrt(len(g))
    return float(g.mean() - half), float(g.mean() + half)


def paired(a: Mapping | Sequence, b: Mapping | Sequence, *, metric: str = "metric", higher_is_better: bool = True,
           names: tuple[str, str] = ("a", "b"), level: float = LEVEL) -> Paired:
    """Pair two sets of per-seed values: mappings are joined on their keys (the seeds), sequences by position."""
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise TypeError("pass both as seed -> value mappings or both as sequences in seed order")
    if isinstance(a, Mapping):
        seeds = tuple(k for k in a if k in b)
        va, vb = [a[k] for k in seeds], [b[k] for k in seeds]
    else:
        if len(a) != len(b):
            raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
        seeds, va, vb = tuple(range(len(a))), list(a), list(b)
    pairs = [(s, float(x), float(y)) for s, x, y in zip(seeds, va, vb)]
    bad = [s for s, x, y in pairs if not (math.isfinite(x) and math.isfinite(y))]
    if bad:
        raise ValueError(f"{names[0]} vs {names[1]} on {metric}: non-finite value at seed(s) {bad}")
    sign = 1.0 if higher_is_better else -1.0
    gaps = tuple(sign * (x - y) for _, x, y in pairs)
    lo, hi = interval(gaps, level)
    return Paired(names[0], names[1], metric, gaps, tuple(s for s, _, _ in pairs), higher_is_better, level, lo, hi)


def paired_frame(df, a: str, b: str, metric: str, *, by: str = "model", pair_on: str = "seed",
                 higher_is_better: bool | None = None, level: float = LEVEL) -> Paired:
    """``paired`` over a long table with one row per (variant, seed); log loss / NE / error default to lower-better."""
    if higher_is_better is None:
        higher_is_better = not any(k in metric.lower() for k in ("logloss", "loss", "ne", "error", "latency", "energy"))
    sa = df[df[by] == a].set_index(pair_on)[metric]
    sb = df[df[by] == b].set_index(pair_on)[metric]
    if sa.empty or sb.empty:
        raise ValueError(f"no rows for {a if sa.empty else b!r} in column {by!r}")
    if sa.index.has_duplicates or sb.index.has_duplicates:
        raise ValueError(f"several rows per {pair_on} for {a!r} or {b!r}: aggregate first")
    return paired(sa.to_dict(), sb.to_dict(), metric=metric, higher_is_better=higher_is_better, names=(a, b), level=level)


def gap_verdict(p: Paired, *, min_effect: float = 0.0, equivalence: float | None = None,
                min_seeds: int = MIN_SEEDS) -> Evidence:
    """Verdict for "a is better than b".

    ``min_effect``: a gap the paper's claim needs (e.g. its own reported gain); a real gap smaller than that is
    "partly". ``equivalence``: a margin inside which a gap counts as absent, so an interval within
    (-equivalence, +equivalence) is "not reproduced" rather than "inconclusive".
    """
    rule = f"paired {int(p.level * 100)}% t interval over >= {min_seeds} seeds must exclude 0 on the paper's side"
    if min_effect:
        rule += f"; mean gap >= {min_effect:g} for full credit"
    if equivalence:
        rule += f"; inside +-{equivalence:g} counts as no effect"
    detail = p.to_dict()
    if p.n < min_seeds:
        return Evidence("inconclusive", rule + f" (only {p.n} seed{'s' if p.n != 1 else ''})", detail)
    if p.lo > 0:
        v = "partly" if min_effect and p.mean < min_effect else "reproduced"
    elif p.hi < 0:
        v = "not reproduced"
    elif equivalence is not None and -equivalence < p.lo and p.hi < equivalence:
        v = "not reproduced"
    else:
        v = "inconclusive"
    return Evidence(v, rule, detail)


def better(p: Paired, **kw) -> Evidence:
    """Alias of ``gap_verdict`` that reads well in a claims list."""
    return gap_verdict(p, **kw)


# ---------------------------------------------------------------------------------------------------------------
# threshold claims


@dataclass(frozen=True)
class Threshold:
    """A claim about one measured quantity, declared as data next to the claim.

    ``direction``: "at_least" (measured >= target), "at_most" (measured <= target), "below"/"above" (strict,
    against another measured quantity passed as ``target``) or "near" (|measured - target| <= tolerance).
    ``tolerance``: how far on the wrong side still counts as "partly" (for "near": the half-width that counts
    as reproduced; twice it as partly). ``source``: where the target and tolerance come from.
    """
    target: float
    direction: str
    tolerance: float = 0.0
    source: str = ""
    unit: str = ""

    def __post_init__(self):
        if self.direction not in ("at_least", "at_most", "near"):
            raise ValueError(f"direction must be at_least, at_most or near, got {self.direction!r}")
        if not (math.isfinite(self.target) and math.isfinite(self.tolerance)) or self.tolerance < 0:
            raise ValueError(f"target and tolerance must be finite, tolerance >= 0 (got {self.target}, {self.tolerance})")

    def describe(self) -> str:
        u = f" {self.unit}" if self.unit else ""
        sym = {"at_least": ">=", "at_most": "<=", "near": "within"}[self.direction]
        core = (f"within {self.tolerance:g}{u} of {self.target:g}{u}" if self.direction == "near"
                else f"{sym} {self.target:g}{u}" + (f" (partly within {self.tolerance:g}{u})" if self.tolerance else ""))
        return core + (f"; from {self.source}" if self.source else "")


def threshold_verdict(value: float, th: Threshold, ci: tuple[float, float] | None = None) -> Evidence:
    """Verdict for a measured value (optionally with an interval) against a declared threshold.

    With an interval, "reproduced" needs the whole interval on the right side, "not reproduced" the whole
    interval beyond the tolerance, and an interval that straddles the line is "inconclusive".
    """
    if not math.isfinite(value):
        return Evidence("inconclusive", th.describe() + " (measured value is not finite)", {"value": value})
    lo, hi = ci if ci is not None else (value, value)
    detail = {"value": value, "lo": lo, "hi": hi, **asdict(th)}
    t, tol = th.target, th.tolerance
    if th.direction == "near":
        if t - tol <= lo and hi <= t + tol:
            v = "reproduced"
        elif t - 2 * tol <= lo and hi <= t + 2 * tol:
            v = "partly"
        elif hi < t - 2 * tol or lo > t + 2 * tol:
            v = "not reproduced"
        else:
            v = "inconclusive"
        return Evidence(v, "measured " + th.describe(), detail)
    s = 1.0 if th.direction == "at_least" else -1.0
    # distance on the paper's side: > 0 means the threshold is met
    worst, best = (s * (lo - t), s * (hi - t)) if s > 0 else (s * (hi - t), s * (lo - t))
    if worst >= 0:
        v = "reproduced"
    elif worst >= -tol and ci is None:
        v = "partly"
    elif best < -tol:
        v = "not reproduced"
    elif ci is not None and worst >= -tol:
        v = "partly"
    else:
        v = "inconclusive"
    return Evidence(v, "measured " + th.describe(), detail)


def slope_interval(x: Sequence[float], y: Sequence[float], level: float = LEVEL, log: bool = True) -> dict:
    """Least-squares slope of y on x (log-log by default: the scaling exponent) with a t interval."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if log:
        if (xa <= 0).any() or (ya <= 0).any():
            raise ValueError("log-log slope needs positive x and y")
        xa, ya = np.log(xa), np.log(ya)
    n = len(xa)
    if n < 3:
        raise ValueError(f"a slope with an interval needs at least 3 points, got {n}")
    xm = xa - xa.mean()
    slope = float((xm * (ya - ya.mean())).sum() / (xm ** 2).sum())
    resid = ya - (ya.mean() + slope * xm)
    se = math.sqrt((resid ** 2).sum() / (n - 2) / (xm ** 2).sum())
    half = _t_quantile(0.5 + level / 2, n - 2) * se
    return {"slope": slope, "lo": slope - half, "hi": slope + half, "se": se, "n": n, "level": level}


# ---------------------------------------------------------------------------------------------------------------
# composite and untested claims


def not_tested(reason: str) -> Evidence:
    return Evidence("not tested", reason)


def all_of(parts: Iterable[Evidence], rule: str = "") -> Evidence:
    """A claim that needs every part: all reproduced -> reproduced; any inconclusive -> inconclusive;
    a mix of reproduced and not reproduced -> partly; otherwise not reproduced. Untested parts are ignored."""
    parts = [p for p in parts if p.verdict != "not tested"]
    if not parts:
        return not_tested(rule or "no part of the claim was measured")
    vs = [p.verdict for p in parts]
    if all(v == "reproduced" for v in vs):
        v = "reproduced"
    elif "inconclusive" in vs:
        v = "inconclusive"
    elif all(v == "not reproduced" for v in vs):
        v = "not reproduced"
    else:
        v = "partly"
    why = "all of: " + "; ".join(f"{p.verdict} ({p.rule})" for p in parts)
    return Evidence(v, (rule + " -- " if rule else "") + why, {"parts": [p.to_dict() for p in parts]})


def tally(verdicts: Iterable[str]) -> dict:
    """Counts per verdict; ``tested`` excludes "not tested" so a report never divides by untested claims."""
    vs = list(verdicts)
    out = {v: vs.count(v) for v in VERDICTS}
    out["tested"] = len(vs) - out["not tested"]
    return out
