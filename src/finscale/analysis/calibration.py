"""Post-hoc calibration of a trained classifier's predicted probabilities.

A model's output is the probability of the positive class. Each method here
learns a monotone map from those probabilities to calibrated ones on the
validation split only; the test split is only ever scored. Pure functions of
numpy arrays; results are frozen dataclasses whose `to_dict()` is their JSON form.

Methods (all fitted by minimising log loss in nats):

- ``temperature``: ``sigmoid(logit(p) / T)``, one parameter; sharpens (T < 1)
  or softens (T > 1) the model without moving its 0.5 point.
- ``platt``: ``sigmoid(a * logit(p) + b)``, Platt's sigmoid on the logit; also
  corrects a shifted base rate.
- ``isotonic``: the best non-decreasing step-and-ramp map of ``p``;
  nonparametric, so it needs more validation samples than the other two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from finscale.analysis.serial import Record, stored
from finscale.train import check_binary, classification_metrics

METHODS = ("temperature", "platt", "isotonic")

# Every calibrated probability is clipped to [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR].
# Isotonic regression fits exact 0 and 1 on stretches of the validation split whose
# labels are all one class; a test sample of the other class in such a stretch has an
# infinite log loss (scikit-learn's log_loss, used by finscale.train.metrics, clips at
# machine epsilon and so charges it ~36 nats, which still swamps a mean of ~0.69).
# 1e-4 caps any one sample's loss at -ln(1e-4) ~ 9.2 nats; a daily-market classifier
# has no business being surer than that, and ECE and Brier move by at most 1e-4.
PROBABILITY_FLOOR = 1e-4

# Folds of the validation split used to choose the best method (see `calibrate`).
CV_FOLDS = 5

# Inputs of exactly 0 or 1 (float32 sigmoids saturate) have infinite logits. This
# clip only keeps logit(p) finite (|logit| <= ~27.6); it is far tighter than
# PROBABILITY_FLOOR so that it does not distort the inputs temperature and Platt see.
_LOGIT_EPS = 1e-12

# Temperature is searched as log T within these bounds (T in [4.5e-5, 2.2e4]),
# the same range scikit-learn searches for its inverse temperature.
_LOG_TEMPERATURE_BOUNDS = (-10.0, 10.0)

_PARAM_KEYS = {
    "temperature": {"temperature"},
    "platt": {"slope", "intercept"},
    "isotonic": {"x", "y"},
}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(
            f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}"
        )


def _probabilities(p: Any, name: str = "predictions") -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError(f"{name} must be probabilities in [0, 1]")
    return p


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return np.log(p) - np.log1p(-p)


def _floored(p: np.ndarray) -> np.ndarray:
    return np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)


@dataclass(frozen=True, kw_only=True)
class CalibrationScores(Record):
    """Calibration of probabilities against labels: expected calibration error (15
    equal-width bins), Brier score (squared probability) and log loss (nats)."""

    ece: float
    brier: float
    log_loss: float

    @classmethod
    def mean(cls, scores: Sequence[CalibrationScores]) -> CalibrationScores:
        """Each score's mean over `scores` (seeds)."""
        return cls(
            ece=float(np.mean([s.ece for s in scores])),
            brier=float(np.mean([s.brier for s in scores])),
            log_loss=float(np.mean([s.log_loss for s in scores])),
        )

    def minus(self, other: CalibrationScores) -> CalibrationScores:
        return CalibrationScores(
            ece=self.ece - other.ece,
            brier=self.brier - other.brier,
            log_loss=self.log_loss - other.log_loss,
        )


@dataclass(frozen=True, kw_only=True)
class SplitScores(Record):
    """`CalibrationScores` of one method on the test split, on the validation split it
    was fitted on (`val`) and on out-of-fold validation predictions (`val_cv`); either
    validation score is None where it was not computed."""

    test: CalibrationScores = stored(parse=CalibrationScores.from_dict)
    val: CalibrationScores | None = stored(parse=CalibrationScores.from_dict, omit_none=True)
    val_cv: CalibrationScores | None = stored(parse=CalibrationScores.from_dict, omit_none=True)


@dataclass(frozen=True, kw_only=True)
class MethodFit(Record):
    """One method fitted on the validation split: its `Calibrator.params`, its scores
    in sample (`val`), cross-fitted (`val_cv`) and on the test split, and the test
    scores minus the uncalibrated test scores (`test_delta`)."""

    params: dict[str, Any]
    val: CalibrationScores = stored(parse=CalibrationScores.from_dict)
    val_cv: CalibrationScores = stored(parse=CalibrationScores.from_dict)
    test: CalibrationScores = stored(parse=CalibrationScores.from_dict)
    test_delta: CalibrationScores = stored(parse=CalibrationScores.from_dict)


def _method_fits(data: dict[str, Any]) -> dict[str, MethodFit]:
    return {m: MethodFit.from_dict(data[m]) for m in METHODS if m in data}


@dataclass(frozen=True, kw_only=True)
class Calibration(Record):
    """What `calibrate` found: the uncalibrated scores, each method's fit (stored by
    method name beside `uncalibrated`) and the `best` method by cross-fitted
    validation log loss."""

    uncalibrated: SplitScores = stored(parse=SplitScores.from_dict)
    methods: dict[str, MethodFit] = stored(flat=True, parse=_method_fits)
    best: str


@dataclass(frozen=True, kw_only=True)
class ReliabilityBins(Record):
    """The data of a reliability diagram: `bin_edges` (n_bins + 1) and per bin the
    `mean_predicted` probability, the `observed_rate` of positive labels (NaN in an
    empty bin) and the `count` of predictions."""

    bin_edges: tuple[float, ...]
    mean_predicted: tuple[float, ...]
    observed_rate: tuple[float, ...]
    count: tuple[int, ...]


@dataclass(frozen=True)
class Calibrator:
    """A fitted calibration map, rebuildable from JSON as ``Calibrator(**saved)``.

    ``params`` holds only plain floats and lists of floats:

    - temperature: ``{"temperature": T}``, T > 0;
    - platt: ``{"slope": a, "intercept": b}``, acting on ``logit(p)``;
    - isotonic: ``{"x": [...], "y": [...]}``, the fitted thresholds (x strictly
      increasing), applied by linear interpolation and held at the end values
      outside ``[x[0], x[-1]]``, as ``IsotonicRegression(out_of_bounds="clip")``
      predicts.

    No scikit-learn object is kept: the thresholds are the whole fitted isotonic
    model, so a calibrator read back from a study's JSON transforms exactly as the
    one that was fitted, and equality compares what was learnt.
    """

    method: str
    params: dict[str, Any]

    def __post_init__(self) -> None:
        _check_method(self.method)
        expected = _PARAM_KEYS[self.method]
        if set(self.params) != expected:
            raise ValueError(
                f"{self.method} calibrator needs params {sorted(expected)}, "
                f"got {sorted(self.params)}"
            )
        if self.method == "temperature" and not self.params["temperature"] > 0:
            raise ValueError("temperature must be positive")
        if self.method == "isotonic":
            x, y = np.asarray(self.params["x"], float), np.asarray(self.params["y"], float)
            if x.ndim != 1 or x.shape != y.shape or x.size == 0:
                raise ValueError("isotonic x and y must be equal-length, non-empty lists")
            # np.interp silently returns nonsense for unsorted thresholds.
            if (np.diff(x) <= 0).any():
                raise ValueError("isotonic x must be strictly increasing")

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated probabilities of predicted probabilities ``p``.

        ``p``: probabilities in [0, 1], any shape (usually ``(n_samples,)``).
        Returns float64 of the same shape, in
        ``[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]``.
        """
        p = _probabilities(p)
        if self.method == "temperature":
            out = expit(_logit(p) / self.params["temperature"])
        elif self.method == "platt":
            out = expit(self.params["slope"] * _logit(p) + self.params["intercept"])
        else:
            out = np.interp(p, self.params["x"], self.params["y"])
        return _floored(out)


def _fit_temperature(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    # scikit-learn >= 1.8 has temperature scaling only inside
    # CalibratedClassifierCV(method="temperature"), which wants a classifier to call:
    # precomputed probabilities would need a pass-through estimator wrapped in a
    # FrozenEstimator, and T is then readable only from the private
    # `_TemperatureScaling.beta_`. (The project also declares scikit-learn >= 1.4.)
    # One scalar is simpler to fit here: minimise the validation log loss over log T,
    # which keeps T positive and makes the bounded search scale-free.
    z = _logit(p)
    if not np.any(np.abs(z) > 1e-12):
        # A collapsed model (every p = 0.5): the loss is flat in T and no T changes
        # the output, so report the identity rather than wherever the search stopped.
        return {"temperature": 1.0}

    def loss(log_t: float) -> float:
        s = z * math.exp(-log_t)
        # Binary cross-entropy of sigmoid(s) in nats, stable for large |s|.
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    result = minimize_scalar(
        loss, bounds=_LOG_TEMPERATURE_BOUNDS, method="bounded", options={"xatol": 1e-8}
    )
    return {"temperature": math.exp(float(result.x))}


def _fit_platt(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    # Logistic regression on logit(p), unpenalised (C=inf), so slope 1, intercept 0 is
    # the identity and a model that is only shifted is fixed exactly. scikit-learn's own
    # method="sigmoid" differs in two ways: it fits on the raw predict_proba output
    # rather than its logit, and it uses Platt's smoothed targets instead of 0/1.
    model = LogisticRegression(C=np.inf, max_iter=1000)
    model.fit(_logit(p)[:, None], y.astype(int))
    return {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}


def _fit_isotonic(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(p, y)
    return {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}


_FITTERS = {"temperature": _fit_temperature, "platt": _fit_platt, "isotonic": _fit_isotonic}


def fit_calibrator(method: str, y_val: Any, p_val: Any) -> Calibrator:
    """Fit one calibration map on validation predictions.

    ``method``: one of ``METHODS``. ``y_val``: ``(n_samples,)`` labels 0/1;
    ``p_val``: ``(n_samples,)`` predicted probabilities of the positive class.
    Both classes must be present: with one class every method degenerates to
    predicting it (Platt cannot be fitted at all), which is no calibration.
    """
    _check_method(method)
    y, p = check_binary(y_val, p_val)
    if y.min() == y.max():
        raise ValueError(
            f"{method} calibration needs both classes in the validation labels, "
            f"got only {int(y[0])}"
        )
    return Calibrator(method, _FITTERS[method](y, p))


def calibration_scores(y: Any, p: Any) -> CalibrationScores:
    """The `CalibrationScores` of probabilities ``p`` ``(n_samples,)`` against labels
    ``y`` ``(n_samples,)``, computed by `finscale.train.classification_metrics` so they
    match the training report."""
    scores = classification_metrics(y, p)
    return CalibrationScores(
        ece=float(scores["ece"]), brier=float(scores["brier"]), log_loss=float(scores["log_loss"])
    )


def _cross_fitted(method: str, y: np.ndarray, p: np.ndarray, folds: int) -> np.ndarray:
    """Out-of-fold calibrated probabilities ``(n_samples,)`` of the validation split.

    Folds are contiguous blocks: the split is a span of trading days, and shuffled
    folds would fit and score on neighbouring, correlated days.
    """
    out = np.empty_like(p)
    for held_out in np.array_split(np.arange(p.size), folds):
        keep = np.ones(p.size, dtype=bool)
        keep[held_out] = False
        try:
            calibrator = fit_calibrator(method, y[keep], p[keep])
        except ValueError as error:
            raise ValueError(
                f"cannot choose a method by {folds}-fold cross-fitting on the "
                f"validation split: {error}"
            ) from error
        out[held_out] = calibrator.transform(p[held_out])
    return out


def calibrate(
    y_val: Any,
    p_val: Any,
    y_test: Any,
    p_test: Any,
    methods: tuple[str, ...] = METHODS,
    cv_folds: int = CV_FOLDS,
) -> Calibration:
    """Fit each method on the validation split, score it there and on the test split.

    ``y_val``, ``p_val``: ``(n_val,)`` 0/1 labels and probabilities the calibrators
    are fitted on; ``y_test``, ``p_test``: ``(n_test,)``, only ever scored.

    Returns the uncalibrated scores, each method's `MethodFit` and the ``best``
    method, the one with the lowest cross-fitted validation log loss.

    ``best`` is chosen on the validation split only, but not on the in-sample
    ``val`` scores: isotonic regression minimises the in-sample log loss over all
    non-decreasing maps, and temperature and Platt (slope > 0) maps are among them,
    so in-sample isotonic would win every time. Each method is instead refitted on
    ``cv_folds - 1`` contiguous folds of the validation split and scored on the
    held-out fold. ``Calibrator(method, result.methods[method].params).transform(p)``
    applies a fitted method to new predictions.
    """
    methods = tuple(methods)
    if not methods:
        raise ValueError(f"no calibration methods given; choose from {', '.join(METHODS)}")
    for method in methods:
        _check_method(method)
    if len(set(methods)) != len(methods):
        raise ValueError(f"calibration methods repeated: {methods}")
    if not (isinstance(cv_folds, int) and cv_folds >= 2):
        raise ValueError(f"cv_folds must be an integer >= 2, got {cv_folds!r}")
    y_val, p_val = check_binary(y_val, p_val)
    y_test, p_test = check_binary(y_test, p_test)
    if p_val.size < cv_folds:
        raise ValueError(f"{p_val.size} validation samples cannot make {cv_folds} folds")

    before = calibration_scores(y_test, p_test)
    fits = {}
    for method in methods:
        calibrator = fit_calibrator(method, y_val, p_val)
        after = calibration_scores(y_test, calibrator.transform(p_test))
        fits[method] = MethodFit(
            params=calibrator.params,
            val=calibration_scores(y_val, calibrator.transform(p_val)),
            val_cv=calibration_scores(y_val, _cross_fitted(method, y_val, p_val, cv_folds)),
            test=after,
            test_delta=after.minus(before),
        )
    return Calibration(
        uncalibrated=SplitScores(test=before, val=calibration_scores(y_val, p_val)),
        methods=fits,
        best=min(methods, key=lambda m: fits[m].val_cv.log_loss),
    )


def reliability_bins(y: Any, p: Any, n_bins: int = 10) -> ReliabilityBins:
    """Per-bin data of a reliability diagram: ``n_bins`` equal-width bins over [0, 1].

    ``y``: ``(n_samples,)`` labels 0/1; ``p``: ``(n_samples,)`` probabilities.
    Bin ``i`` holds ``p`` in ``[i/n_bins, (i+1)/n_bins)`` and ``p == 1`` falls in
    the last bin, as in `finscale.train.metrics.expected_calibration_error`, so
    with ``n_bins=15`` the count-weighted mean gap of these bins is that ECE.

    Returns ``bin_edges`` (``n_bins + 1``), and per bin ``mean_predicted``,
    ``observed_rate`` (share of positive labels) and ``count``. An empty bin has
    NaN means and count 0.
    scikit-learn's ``calibration_curve`` drops empty bins and returns no counts,
    which the diagram's histogram of predictions needs; hence this function.
    """
    if not (isinstance(n_bins, int) and n_bins >= 1):
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    y, p = check_binary(y, p)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(bins, weights=p, minlength=n_bins) / count
        observed_rate = np.bincount(bins, weights=y, minlength=n_bins) / count
    return ReliabilityBins(
        bin_edges=tuple(np.linspace(0.0, 1.0, n_bins + 1).tolist()),
        mean_predicted=tuple(mean_predicted.tolist()),
        observed_rate=tuple(observed_rate.tolist()),
        count=tuple(count.astype(int).tolist()),
    )
