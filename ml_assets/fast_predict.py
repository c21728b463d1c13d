"""Scoring a million loans with the gradient-boosting champion without sklearn's per-call encoders.

`CalibratedClassifierCV(Pipeline([ColumnTransformer(passthrough, OrdinalEncoder), HGB]))`
spends about half of a 1M-loan predict_proba encoding five string columns twice (the
pipeline's OrdinalEncoder, then the one HistGradientBoosting keeps for its categorical
features) and stacking the columns twice. Here both encodings are composed into one lookup
per category, the trees walk the model's own binned matrix (uint8, as in fitting), and the
isotonic calibrator is applied as CalibratedClassifierCV does. The result is the same floats
as `estimator.predict_proba(x)[:, 1]` (tests/test_ml.py checks it bit for bit); any model of
another shape returns None and is scored the generic way.
"""

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads


def _parts(estimator):
    """(outer ColumnTransformer, HGB, isotonic calibrator) when the estimator has the shape that
    train.gradient_boosting + CalibratedClassifierCV(ensemble=False) fit, else None."""
    if not (isinstance(estimator, CalibratedClassifierCV) and len(estimator.calibrated_classifiers_) == 1):
        return None
    calibrated = estimator.calibrated_classifiers_[0]
    pipe = calibrated.estimator
    if not (isinstance(pipe, Pipeline) and len(pipe.steps) == 2 and len(calibrated.calibrators) == 1
            and isinstance(calibrated.calibrators[0], IsotonicRegression) and list(estimator.classes_) == [0, 1]):
        return None
    enc, hgb = pipe.steps[0][1], pipe.steps[1][1]
    if not (isinstance(enc, ColumnTransformer) and isinstance(hgb, HistGradientBoostingClassifier)
            and hgb.n_trees_per_iteration_ == 1 and hgb._preprocessor is not None):
        return None
    kinds = [(t, cols) for name, t, cols in enc.transformers_ if name != "remainder" or t != "drop"]
    passthrough = kinds[0][0] == "passthrough" or (isinstance(kinds[0][0], FunctionTransformer)
                                                   and kinds[0][0].func is None)  # 'passthrough', once fitted
    if not (len(kinds) == 2 and passthrough and isinstance(kinds[1][0], OrdinalEncoder)
            and kinds[1][0].unknown_value == -1 and kinds[1][0].encoded_missing_value == -1):
        return None
    return enc, hgb, calibrated.calibrators[0]


def _internal_matrix(x: pd.DataFrame, enc: ColumnTransformer, hgb: HistGradientBoostingClassifier) -> np.ndarray:
    """The float matrix HGB's trees see: its categorical features first (codes of its own
    OrdinalEncoder, NaN when unseen in training), then the numeric ones, in pipeline order."""
    (_, _, numeric), (_, outer, categorical) = enc.transformers_[:2]
    inner = hgb._preprocessor.named_transformers_["encoder"]
    pipeline_columns = list(numeric) + list(categorical)
    is_cat = np.asarray(hgb.is_categorical_, dtype=bool)
    columns = {}
    for j, c in enumerate(categorical):
        # pipeline code of each category (-1: unseen or missing), then HGB's code of that value
        outer_codes = pd.Index(outer.categories_[j]).get_indexer(x[c])
        seen = np.asarray(inner.categories_[list(np.flatnonzero(is_cat)).index(len(numeric) + j)], dtype=float)
        lookup = np.full(len(outer.categories_[j]) + 1, np.nan)  # last slot: pipeline code -1
        for k, value in enumerate(list(range(len(outer.categories_[j]))) + [-1]):
            at = np.flatnonzero(seen == value)
            if len(at):
                lookup[k] = float(at[0])
        columns[c] = lookup[np.where(outer_codes >= 0, outer_codes, len(outer.categories_[j]))]
    for c in numeric:
        columns[c] = x[c].to_numpy(dtype=float, na_value=np.nan)
    order = [pipeline_columns[i] for i in np.flatnonzero(is_cat)] + [pipeline_columns[i] for i in np.flatnonzero(~is_cat)]
    out = np.empty((len(x), len(order)), dtype=np.float64, order="F")  # filled column by column
    for i, c in enumerate(order):
        out[:, i] = columns[c]
    return out


def predict_positive(estimator, x: pd.DataFrame, n_threads: int) -> np.ndarray | None:
    """P(label = 1) for the prepared rows `x`, or None when the estimator is not of the known shape."""
    parts = _parts(estimator)
    if parts is None:
        return None
    enc, hgb, calibrator = parts
    if any(c not in x.columns for cols in (enc.transformers_[0][2], enc.transformers_[1][2]) for c in cols):
        return None
    binned = hgb._bin_mapper.transform(_internal_matrix(x, enc, hgb))
    raw = np.zeros((len(x), 1), dtype=hgb._baseline_prediction.dtype, order="F") + hgb._baseline_prediction
    hgb._predict_iterations(binned, hgb._predictors, raw, True, _openmp_effective_n_threads(n_threads))
    p = calibrator.predict(raw.ravel())
    p[(1.0 < p) & (p <= 1.0 + 1e-5)] = 1.0  # as CalibratedClassifierCV does
    return p
