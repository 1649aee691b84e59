"""Multiple imputation of covariates by chained equations across forces.

Why a small chained-equations loop and not miceforest (LightGBM):
(1) unordered categories are imputed with a multinomial logit (weak normal prior, see _multinomial_posterior)
and stay categories; (2) the imputation models must carry named terms the analysis needs (treatment,
treatment x together_at_index, calendar time, event indicator, Nelson-Aalen cumulative hazard, log follow-up),
which a parametric model keeps exactly, while trees may drop or shrink the moderation; (3) parameters are drawn
from their (approximate) posterior before every draw (proper imputation, so Rubin's rules give honest
variances); (4) a field a force never records must not get a force dummy, which is simple to enforce in a
design matrix; (5) every random number comes from one numpy Generator seeded per imputation and BLAS runs on one
thread, so the same seed gives the same bytes whatever threads a job gets (no LightGBM scheduling). Rounding
differences (another BLAS thread count, another summation order) left 18,000 cases byte-identical but at 200,000
cases flipped a draw, after which the chain continued with other, equally valid draws.

Speed (1,000,000 cases in about 30 s of CPU): completed values are numpy arrays (level codes, not objects), force
dummies are held as one code per row (see Design), and models are fitted on at most max_fit_rows rows.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from cara_eval.impute.fields import check_fields, field_kind, field_levels

TRACE_COLUMNS = ["iteration", "field", "level", "mean_imputed"]


@dataclass(frozen=True)
class MnarShift:
    """Not-at-random sensitivity: imputed values of `field` are shifted by `delta` (log-odds for binary fields)."""

    field: str
    delta: float


@dataclass(frozen=True)
class ImputationSettings:
    """The `imputation:` config section, as the engine needs it."""

    fields: tuple[str, ...]
    iterations: int = 10
    pmm_donors: int = 5
    max_fit_rows: int = 200_000
    force_level_components: int = 2
    logit_prior_sd: float = 2.5

    @classmethod
    def from_config(cls, section: Mapping) -> "ImputationSettings":
        return cls(
            fields=tuple(section["fields"]),
            iterations=section["iterations"],
            pmm_donors=section["pmm_donors"],
            max_fit_rows=section["max_fit_rows"],
            force_level_components=section["force_level_components"],
            logit_prior_sd=section["logit_prior_sd"],
        )


@dataclass
class ImputationResult:
    """One imputed copy of the cases and the chain's trace (mean of imputed values per iteration)."""

    data: pd.DataFrame
    trace: pd.DataFrame


def nelson_aalen_at_followup(cases: pd.DataFrame) -> np.ndarray:
    """Marginal Nelson-Aalen cumulative hazard at each case's own event or censoring time.

    White & Royston (2009): with a time-to-event outcome, the event indicator plus H(T) in the imputation
    model approximates conditioning on the outcome. Flag-only forces have no event time, so their time is the
    follow-up window.
    """
    event = cases["any_reoffence"].astype(bool).to_numpy()
    days_to_first = pd.to_numeric(cases["days_to_first"], errors="coerce").to_numpy(dtype=float)
    followup = cases["followup_days"].to_numpy(dtype=float)
    time = np.where(event & ~np.isnan(days_to_first), days_to_first, followup)
    unique_times, inverse = np.unique(time, return_inverse=True)
    events_at = np.bincount(inverse, weights=event.astype(float), minlength=len(unique_times))
    leaving_at = np.bincount(inverse, minlength=len(unique_times))
    at_risk = len(time) - np.concatenate([[0], np.cumsum(leaving_at)[:-1]])
    cumulative_hazard = np.cumsum(events_at / at_risk)
    return cumulative_hazard[inverse]


def _standardise(column: np.ndarray) -> np.ndarray:
    sd = column.std()
    return (column - column.mean()) / sd if sd > 0 else column * 0.0


def fixed_predictors(cases: pd.DataFrame) -> pd.DataFrame:
    """Always-observed predictors of every imputation model: treatment, time, offence type, outcome information."""
    index_date = pd.to_datetime(cases["index_date"])
    decimal_year = (index_date.dt.year + (index_date.dt.dayofyear - 1) / 365.25).to_numpy(dtype=float)
    offence = pd.get_dummies(cases["offence_type"].astype(str), prefix="offence", drop_first=True, dtype=float)
    predictors = pd.DataFrame(
        {
            "treated": (cases["arm"].astype(str) == "cara").to_numpy(dtype=float),
            "calendar_time": _standardise(decimal_year),
            "any_reoffence": cases["any_reoffence"].astype(bool).to_numpy(dtype=float),
            "cumulative_hazard": _standardise(nelson_aalen_at_followup(cases)),
            "log_followup": _standardise(np.log(np.maximum(cases["followup_days"].to_numpy(dtype=float), 1.0))),
        },
        index=cases.index,
    )
    return pd.concat([predictors, offence.set_index(cases.index)], axis=1)


def _encode(field: str, values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Completed values of one field as design columns (numeric standardised, category codes as dummies)."""
    if field_kind(field) == "numeric":
        return [field], _standardise(values)[:, None]
    levels = field_levels(field)
    return [f"{field}={level}" for level in levels[1:]], (values[:, None] == np.arange(1, len(levels))).astype(float)


def _force_components(encoded: np.ndarray, force_code: np.ndarray, recording_forces: int, wanted: int) -> np.ndarray:
    """Leading principal components of force-level means: force information without a force dummy."""
    means = pd.DataFrame(encoded).groupby(force_code, sort=True).mean()
    n_components = max(0, min(wanted, recording_forces - 2, means.shape[1]))
    if n_components == 0:
        return np.empty((len(encoded), 0))
    centred = means - means.mean()
    scale = centred.std(ddof=0).replace(0, 1.0)
    u, s, _ = np.linalg.svd((centred / scale).to_numpy(), full_matrices=False)
    return (u[:, :n_components] * s[:n_components])[force_code]


@dataclass(frozen=True)
class Design:
    """A design matrix held as dense columns plus force dummies stored as one column index per row.

    Force dummies are most of the columns but hold a single 1 per row, so products with them are per-force
    sums: the fits then cost (dense columns)^2 per row instead of (all columns)^2, and 1,000,000 rows never
    carry 40-odd dummy columns in memory. Column order (dense, then dummies) is the order of the coefficients.
    """

    dense: np.ndarray
    dummy: np.ndarray  # per row: its dummy column, or n_dummies when the row has none (reference force)
    n_dummies: int
    columns: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dense), self.dense.shape[1] + self.n_dummies

    @cached_property
    def _indicator(self) -> sparse.csr_matrix:
        """n_dummies x rows: the dummy columns transposed, as a sparse matrix."""
        with_dummy = np.flatnonzero(self.dummy < self.n_dummies)
        return sparse.csr_matrix((np.ones(len(with_dummy)), (self.dummy[with_dummy], with_dummy)),
                                 shape=(self.n_dummies, len(self.dummy)))

    def rows(self, index: np.ndarray) -> "Design":
        return Design(self.dense[index], self.dummy[index], self.n_dummies, self.columns)

    def kept(self, keep: np.ndarray) -> "Design":
        """Only the kept columns; the rows of a dropped dummy then have none (as the reference force)."""
        if keep.all():
            return self
        width = self.dense.shape[1]
        kept_dummies = np.flatnonzero(keep[width:])
        relabel = np.full(self.n_dummies + 1, len(kept_dummies))
        relabel[kept_dummies] = np.arange(len(kept_dummies))
        return Design(self.dense[:, keep[:width]], relabel[self.dummy], len(kept_dummies),
                      tuple(np.asarray(self.columns, dtype=object)[keep]))

    def non_constant(self) -> np.ndarray:
        """Columns that vary over the rows (a constant one is collinear with the intercept, which is always kept)."""
        dummy_counts = np.bincount(self.dummy, minlength=self.n_dummies + 1)[:-1]
        dummy_varies = (dummy_counts > 0) & (dummy_counts < len(self.dense))
        return np.concatenate([[True], (self.dense[:, 1:] != self.dense[0, 1:]).any(axis=0), dummy_varies])

    def __matmul__(self, beta: np.ndarray) -> np.ndarray:
        width = self.dense.shape[1]
        dummy_effects = np.concatenate([beta[width:], np.zeros((1, *beta.shape[1:]))])
        return self.dense @ beta[:width] + dummy_effects[self.dummy]

    def transpose_dot(self, values: np.ndarray) -> np.ndarray:
        """X' values, for a vector or a matrix of per-row values."""
        return np.concatenate([self.dense.T @ values, self._indicator @ values])

    def weighted_gram(self, weights: np.ndarray | None = None) -> np.ndarray:
        """X' diag(weights) X (weights of one when None)."""
        width, p = self.dense.shape[1], self.shape[1]
        weighted = self.dense if weights is None else self.dense * weights[:, None]
        gram = np.zeros((p, p))
        gram[:width, :width] = self.dense.T @ weighted
        cross = self._indicator @ weighted
        gram[width:, :width], gram[:width, width:] = cross, cross.T
        per_dummy = np.bincount(self.dummy, weights=weights, minlength=self.n_dummies + 1)[:-1]
        gram[width + np.arange(self.n_dummies), width + np.arange(self.n_dummies)] = per_dummy
        return gram


class ChainedImputer:
    """One chain of chained equations over the configured covariates (one imputed dataset per chain).

    Completed values live in numpy arrays: floats for numeric fields, level codes (int8, -1 for a value
    outside the levels, which the models treat as the reference level as before) for the others.
    """

    def __init__(self, cases: pd.DataFrame, settings: ImputationSettings, structural: pd.DataFrame):
        check_fields(cases, settings.fields)
        self.cases = cases.reset_index(drop=True)
        self.settings = settings
        self.missing = {f: self.cases[f].isna().to_numpy() for f in settings.fields}
        self.visit_order = sorted(settings.fields, key=lambda f: (self.missing[f].mean(), f))
        fixed = fixed_predictors(self.cases)
        self.fixed_columns, self.fixed = list(fixed.columns), fixed.to_numpy(dtype=float)
        self.treated = fixed["treated"].to_numpy()
        self.force_names, self.force_code = np.unique(self.cases["force"].astype(str).to_numpy(), return_inverse=True)
        n_forces = len(self.force_names)
        self.force_dummy = np.where(self.force_code == 0, n_forces - 1, self.force_code - 1)
        self.force_dummy_columns = tuple(f"force_{name}" for name in self.force_names[1:])
        structural_fields = structural.groupby("field")["force"].nunique() if len(structural) else pd.Series(dtype=int)
        self.structural_recording = {f: n_forces - int(structural_fields.get(f, 0)) for f in settings.fields}

    def run(self, seed: int, mnar: MnarShift | None = None) -> ImputationResult:
        rng = np.random.default_rng(seed)
        completed = {f: self._initial_fill(f, rng) for f in self.settings.fields}
        warm_starts: dict = {}
        trace = []
        for iteration in range(1, self.settings.iterations + 1):
            for f in self.visit_order:
                if not self.missing[f].any():
                    continue
                completed[f] = self._impute_field(f, completed, rng, warm_starts, mnar)
                trace.extend(self._trace_rows(iteration, f, completed[f]))
        data = self.cases.copy()
        for f in self.settings.fields:
            data[f] = self._as_column(f, completed[f])
        return ImputationResult(data=data, trace=pd.DataFrame(trace, columns=TRACE_COLUMNS))

    def _initial_fill(self, f: str, rng: np.random.Generator) -> np.ndarray:
        if field_kind(f) == "numeric":
            values = self.cases[f].to_numpy(dtype=float, na_value=np.nan)
        else:
            values = pd.Categorical(self.cases[f].astype(object), categories=list(field_levels(f))).codes.copy()
        observed = values[~self.missing[f]]
        values[self.missing[f]] = rng.choice(observed, size=int(self.missing[f].sum()), replace=True)
        return values

    def _as_column(self, f: str, values: np.ndarray) -> pd.Series:
        """Completed values back in the column's dtype; observed values are the recorded ones."""
        if field_kind(f) == "numeric":
            return pd.Series(values, index=self.cases.index).astype(self.cases[f].dtype)
        column = self.cases[f].to_numpy(dtype=object, copy=True)
        column[self.missing[f]] = np.asarray(field_levels(f), dtype=object)[values[self.missing[f]]]
        return pd.Series(column, index=self.cases.index).astype(self.cases[f].dtype)

    def _design(self, f: str, completed: Mapping[str, np.ndarray]) -> Design:
        names, blocks = ["const", *self.fixed_columns], [np.ones((len(self.cases), 1)), self.fixed]
        others = [_encode(g, completed[g]) for g in self.settings.fields if g != f]
        for other_names, encoded in others:
            names.extend(other_names)
            blocks.append(encoded)
        if "together_at_index" in completed and f != "together_at_index":
            names.append("treated:together")
            blocks.append((self.treated * (completed["together_at_index"] == 1))[:, None])
        no_dummies = np.zeros(len(self.cases), dtype=np.intp)
        if self.structural_recording[f] < len(self.force_names):
            components = _force_components(np.hstack([encoded for _, encoded in others]), self.force_code,
                                           self.structural_recording[f], self.settings.force_level_components)
            names.extend(f"force_pc{j + 1}" for j in range(components.shape[1]))
            return Design(np.hstack([*blocks, components]), no_dummies, 0, tuple(names))
        return Design(np.hstack(blocks), self.force_dummy, len(self.force_dummy_columns),
                      (*names, *self.force_dummy_columns))

    def _impute_field(self, f, completed, rng, warm_starts, mnar) -> np.ndarray:
        design = self._design(f, completed)
        shift = mnar.delta if mnar is not None and mnar.field == f else 0.0
        values = completed[f].copy()
        # together_at_index is imputed within each arm, so its relation to everything may differ by arm
        # (treated is constant within an arm and drops out with the other constant columns).
        strata = self.treated if f == "together_at_index" else np.zeros(len(values))
        for stratum in np.unique(strata):
            rows = strata == stratum
            missing = self.missing[f] & rows
            if not missing.any():
                continue
            observed_rows, missing_rows = np.flatnonzero(rows & ~missing), np.flatnonzero(missing)
            values[missing] = self._draw(f, design, observed_rows, missing_rows, values, rng, warm_starts,
                                         (f, stratum), shift)
        return values

    def _fit_subsample(self, n_observed: int, rng: np.random.Generator) -> np.ndarray | None:
        """Positions among the observed rows the model is fitted on: all (None), or a seeded subsample."""
        if n_observed > self.settings.max_fit_rows:
            return np.sort(rng.choice(n_observed, size=self.settings.max_fit_rows, replace=False))
        return None

    def _draw(self, f, design, observed_rows, missing_rows, values, rng, warm_starts, key, shift):
        x_observed = design.rows(observed_rows)
        keep = x_observed.non_constant()
        x_observed, x_missing = x_observed.kept(keep), design.rows(missing_rows).kept(keep)
        subsample = self._fit_subsample(len(observed_rows), rng)
        x_fit, y = (x_observed, values[observed_rows]) if subsample is None else (
            x_observed.rows(subsample), values[observed_rows[subsample]])
        if field_kind(f) == "numeric":
            beta_hat, beta = _linear_posterior_draw(rng, x_fit, y)
            imputed = _pmm(rng, x_observed @ beta_hat, values[observed_rows], x_missing @ beta,
                           self.settings.pmm_donors)
            return imputed + shift
        levels = field_levels(f)
        warm_key = (key, keep.tobytes())
        mode, covariance = _multinomial_posterior(x_fit, y, len(levels), self.settings.logit_prior_sd,
                                                  warm_starts.get(warm_key))
        warm_starts[warm_key] = mode
        beta = _mvn_draw(rng, mode.ravel(order="F"), covariance).reshape(mode.shape, order="F")
        linear = x_missing @ beta
        linear[:, 0] += shift  # MNAR shift of a two-level field: log odds of its second level
        cumulative = np.cumsum(_softmax_with_reference(linear)[0], axis=1)
        return (rng.random(len(linear))[:, None] > cumulative).sum(axis=1).clip(max=len(levels) - 1)

    def _trace_rows(self, iteration: int, f: str, values: np.ndarray) -> list[dict]:
        imputed = values[self.missing[f]]
        if field_kind(f) == "numeric":
            return [{"iteration": iteration, "field": f, "level": "", "mean_imputed": float(imputed.mean())}]
        return [
            {"iteration": iteration, "field": f, "level": str(level), "mean_imputed": float((imputed == code).mean())}
            for code, level in enumerate(field_levels(f)[1:], start=1)
        ]


def _linear_posterior_draw(rng, x: Design, y, ridge: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit and one draw of the coefficients from their posterior (Rubin 1987; mice's norm.draw).

    The tiny ridge keeps X'X invertible when dummies are collinear, as mice does.
    """
    crossproduct = x.weighted_gram()
    crossproduct[np.diag_indices_from(crossproduct)] *= 1 + ridge
    inverse = np.linalg.inv(crossproduct)
    beta_hat = inverse @ x.transpose_dot(y)
    residual = y - x @ beta_hat
    sigma2 = residual @ residual / rng.chisquare(max(len(y) - x.shape[1], 1))
    return beta_hat, _mvn_draw(rng, beta_hat, inverse * sigma2)


def _softmax_with_reference(linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level probabilities (reference level first, its linear predictor 0) and each row's log normaliser."""
    stacked = np.column_stack([np.zeros(len(linear)), linear])
    top = stacked.max(axis=1, keepdims=True)
    exponentials = np.exp(stacked - top)
    total = exponentials.sum(axis=1, keepdims=True)
    return exponentials / total, (top + np.log(total))[:, 0]


def _multinomial_posterior(x: Design, codes, n_levels: int, prior_sd: float, start=None, max_iter: int = 50):
    """Posterior mode and covariance of a multinomial logit with normal(0, prior_sd) priors on the slopes.

    Level 0 is the reference; two levels give the ordinary logit. statsmodels' MNLogit and Logit are
    unpenalised: under (quasi-)separation, which small force x category cells produce, their coefficients ran
    past 20 and the parameter draws overflowed to NaN. The prior keeps every draw finite; with thousands of
    cases it is negligible. Damped Newton on the log posterior (concave, so it converges).
    """
    n, p = x.shape
    k = n_levels - 1
    target = (codes[:, None] == np.arange(1, n_levels)[None, :]).astype(float)
    precision = np.full(p, prior_sd**-2.0)
    precision[0] = 0.01  # intercept: normal(0, 10)
    beta = np.zeros((p, k)) if start is None else start.copy()

    def log_posterior_and_probabilities(b):
        linear = x @ b
        probabilities, log_normaliser = _softmax_with_reference(linear)
        log_likelihood = np.sum(target * linear) - log_normaliser.sum()
        return log_likelihood - 0.5 * np.sum(precision[:, None] * b**2), probabilities[:, 1:]

    current, probabilities = log_posterior_and_probabilities(beta)
    for _ in range(max_iter):
        gradient = (x.transpose_dot(target - probabilities) - precision[:, None] * beta).ravel(order="F")
        information = np.zeros((p * k, p * k))
        for a in range(k):
            for b in range(a, k):
                block = x.weighted_gram(probabilities[:, a] * (float(a == b) - probabilities[:, b]))
                information[a * p:(a + 1) * p, b * p:(b + 1) * p] = block
                information[b * p:(b + 1) * p, a * p:(a + 1) * p] = block
        information[np.diag_indices_from(information)] += np.tile(precision, k)
        step = np.linalg.solve(information, gradient).reshape(p, k, order="F")
        scale = 1.0
        # The last point evaluated is the one taken, so its probabilities serve the next Newton step.
        while (evaluated := log_posterior_and_probabilities(beta + scale * step))[0] < current and scale > 1e-6:
            scale /= 2
        beta = beta + scale * step
        previous, (current, probabilities) = current, evaluated
        if current - previous < 1e-8:
            break
    return beta, np.linalg.inv(information)


def _mvn_draw(rng: np.random.Generator, mean, cov) -> np.ndarray:
    """One draw from N(mean, cov), tolerant of a nearly singular covariance (eigen decomposition)."""
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(cov, dtype=float))
    root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    return np.asarray(mean, dtype=float) + root @ rng.standard_normal(len(eigenvalues))


def _pmm(rng, predicted_observed, observed_values, predicted_missing, donors: int) -> np.ndarray:
    """Predictive mean matching: each missing value takes the value of one of its `donors` nearest observed cases."""
    order = np.argsort(predicted_observed, kind="stable")
    sorted_predicted, sorted_values = predicted_observed[order], observed_values[order]
    n = len(sorted_predicted)
    donors = min(donors, n)
    position = np.searchsorted(sorted_predicted, predicted_missing)
    window = position[:, None] + np.arange(-donors, donors)[None, :]
    window = np.clip(window, 0, n - 1)
    distance = np.abs(sorted_predicted[window] - predicted_missing[:, None])
    nearest = np.take_along_axis(window, np.argsort(distance, axis=1, kind="stable")[:, :donors], axis=1)
    pick = nearest[np.arange(len(nearest)), rng.integers(0, donors, size=len(nearest))]
    return sorted_values[pick]


def impute(
    cases: pd.DataFrame, settings: ImputationSettings, structural: pd.DataFrame, seed: int,
    mnar: MnarShift | None = None,
) -> ImputationResult:
    """One imputed copy of the cases (covariates filled, everything else untouched) and its convergence trace."""
    if mnar is not None and field_kind(mnar.field) == "categorical":
        raise ValueError(f"MNAR field '{mnar.field}' has more than two categories: choose a numeric or binary field")
    if mnar is not None and mnar.field not in settings.fields:
        raise ValueError(f"MNAR field '{mnar.field}' is not among imputation.fields")
    # One BLAS thread: the products are tall and narrow (about 20 dense columns), so a second thread gains little,
    # and on a shared machine OpenBLAS threads waiting for a busy core made each product 40x slower (measured).
    with threadpool_limits(limits=1, user_api="blas"):
        return ChainedImputer(cases, settings, structural).run(seed, mnar)


def complete_cases(cases: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """Cases with every analysis covariate observed (the complete-case comparison dataset)."""
    return cases.dropna(subset=list(fields)).reset_index(drop=True)


def rubin_pool(estimates: Sequence[float], variances: Sequence[float]) -> tuple[float, float]:
    """Rubin's rules: pooled estimate and total variance W + (1 + 1/m) B."""
    estimates, variances = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    m = len(estimates)
    between = estimates.var(ddof=1) if m > 1 else 0.0
    return float(estimates.mean()), float(variances.mean() + (1 + 1 / m) * between)
