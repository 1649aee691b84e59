"""Log density of one force's cells as a force the model has never seen, its own two terms integrated out exactly.

Leave-one-force-out scores a held-out force by p(y_f | theta) = integral of p(y_f | theta, a, b) p(a, b | theta)
da db: a is the force's intercept, b its CARA log hazard ratio, p(a, b | theta) what the pooling says of a new force
(partial: N(intercept_mean, force_intercept_sd) x N(mu_log_hr, tau); complete: b = mu_log_hr; none: the wide
priors). Drawing (a, b) from that prior by Monte Carlo misses the likelihood's narrow peak (with no pooling almost
every draw does), so each posterior draw's estimate was noisy, and importance sampling over draws failed (Pareto k
2.5-14 in 40 of 45 no-pooling forces of the publication run, README).

In every cell a and b enter the log rate linearly (log rate = a + b * cara + the rest), and each cell's likelihood
(Poisson with a log link, binomial with a complementary log-log link) is log-concave in it. So, per posterior draw,
the integrand has one mode: Newton's method finds it, and Gauss-Hermite quadrature on the Laplace approximation's
scale around it (adaptive Gauss-Hermite quadrature) gives the integral far below Monte Carlo error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import gammaln, logsumexp, xlogy

from cara_eval.model.effectiveness import free_variable_draws, values_at_draws

# Nodes per integrated term. Default-size data (imp1, 1,000 draws), largest difference from 15 nodes over draws:
# 9 nodes 7e-6 nats (Norfolk, 267 cells, no pooling; Hampshire, 2,020 cells, 7e-10), 5 nodes 6e-4, 3 nodes 0.015;
# 9 nodes cost 0.5-3.3 s CPU per force.
NODES_PER_TERM = 9
_CHUNK_VALUES = 4_000_000  # draws x nodes x cells evaluated at once (about 32 MB per array)


@dataclass(frozen=True)
class ForceCells:
    """The observed counts of one force's cells and each cell's CARA indicator (b's coefficient)."""

    events: np.ndarray  # hazard cells: events, Poisson
    hazard_cara: np.ndarray
    k: np.ndarray  # flag cells: reoffenders of n, binomial
    n: np.ndarray
    flag_cara: np.ndarray

    @classmethod
    def of(cls, cells) -> ForceCells:
        hazard, flags = cells.hazard, cells.binomial
        return cls(events=hazard["events"].to_numpy(dtype=float), hazard_cara=hazard["cara"].to_numpy(dtype=float),
                   k=flags["k"].to_numpy(dtype=float), n=flags["n"].to_numpy(dtype=float),
                   flag_cara=flags["cara"].to_numpy(dtype=float))

    @property
    def constant(self) -> float:
        """The log densities' terms free of every parameter: -log(events!) and log C(n, k)."""
        return float(-gammaln(self.events + 1).sum()
                     + (gammaln(self.n + 1) - gammaln(self.k + 1) - gammaln(self.n - self.k + 1)).sum())


def _inner(tensor, scalar_op: str, name: str):
    """The argument of `tensor` = scalar_op(argument), the form cara_eval.model.effectiveness gives its cells."""
    owner = tensor.owner
    if owner is None or type(getattr(owner.op, "scalar_op", None)).__name__.lower() != scalar_op:
        raise ValueError(f"{name}: expected its parameter to be {scalar_op}(linear predictor); the model changed")
    return owner.inputs[0]


def linear_predictors(model: pm.Model) -> dict:
    """Per-cell tensors of the blocks the model has, linear in the force's two terms: `hazard`, the log rate of each
    hazard cell (Poisson `events`, mu = exp(log rate)), and `flags`, the log cumulative hazard of each flag cell
    (Binomial `flag_events`, p = sigmoid(log(exp(H) - 1)), so H = softplus of the logit)."""
    tensors = {}
    if "events" in model.named_vars:
        tensors["hazard"] = _inner(model["events"].owner.inputs[-1], "exp", "events")
    if "flag_events" in model.named_vars:
        logit = _inner(model["flag_events"].owner.inputs[-1], "sigmoid", "flag_events")
        tensors["flags"] = pm.math.log(pm.math.log1pexp(logit))
    return tensors


def own_term_names(pooling: str) -> tuple[str, str]:
    """Posterior names of a force's intercept and CARA log hazard ratio under a pooling."""
    if pooling == "none":
        return "no_pooling_force_intercept", "no_pooling_force_log_hr"
    return "force_intercept", "force_log_hr"


def offsets(model: pm.Model, posterior: xr.Dataset, slot: int, pooling: str,
            data: ForceCells) -> tuple[np.ndarray, np.ndarray]:
    """Each draw's log rates of the hazard cells and log cumulative hazards of the flag cells of force `slot`
    (draws x cells; no columns for a block the force lacks), without the force's own terms: its slope set to 0 (a
    new force follows the shared trend), its intercept and CARA effect subtracted."""
    tensors = linear_predictors(model)
    values = free_variable_draws(model, posterior)
    if "force_slope" in values:
        values["force_slope"] = values["force_slope"].copy()
        values["force_slope"][:, slot] = 0.0
    per_block = dict(zip(tensors, values_at_draws(model, list(tensors.values()), values), strict=True))
    intercept_name, effect_name = own_term_names(pooling)
    posterior = posterior.stack(sample=("chain", "draw")).transpose("sample", ...)  # chain by chain, as the values
    draws = posterior.sizes["sample"]
    intercept = posterior[intercept_name].to_numpy()[:, slot, None]
    effect = posterior[effect_name].to_numpy()[:, slot, None]

    def without_own_terms(block, cara):
        return per_block[block] - intercept - effect * cara if block in per_block else np.zeros((draws, 0))

    return without_own_terms("hazard", data.hazard_cara), without_own_terms("flags", data.flag_cara)


def new_force_prior(posterior: xr.Dataset, priors: dict, pooling: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw, the new force's terms as the pooling draws them: (mean, sd) of each integrated term (draws x terms:
    intercept, and the CARA effect unless pooling is complete) and the fixed CARA effect (0 unless complete).
    A between-force SD not in the posterior (too few forces, cara_eval.model.terms) is its prior's scale."""
    posterior = posterior.stack(sample=("chain", "draw"))
    draws = posterior.sizes["sample"]

    def per_draw(name, fallback):
        return posterior[name].to_numpy() if name in posterior else np.full(draws, priors[fallback]["sigma"])

    if pooling == "none":
        spec_a, spec_b = priors["no_pooling_force_intercept"], priors["no_pooling_force_log_hr"]
        mean = np.tile([spec_a.get("mu", 0.0), spec_b.get("mu", 0.0)], (draws, 1))
        sd = np.tile([spec_a["sigma"], spec_b["sigma"]], (draws, 1))
        return mean, sd, np.zeros(draws)
    intercept = (posterior["intercept_mean"].to_numpy(), per_draw("force_intercept_sd", "force_intercept_sd"))
    mu = posterior["mu_log_hr"].to_numpy()
    if pooling == "complete":
        return intercept[0][:, None], intercept[1][:, None], mu
    return (np.column_stack([intercept[0], mu]), np.column_stack([intercept[1], per_draw("tau", "tau")]),
            np.zeros(draws))


def integrated_log_likelihood(data: ForceCells, hazard: np.ndarray, flags: np.ndarray, mean: np.ndarray,
                              sd: np.ndarray, fixed_effect: np.ndarray, nodes: int = NODES_PER_TERM) -> np.ndarray:
    """log integral of p(y | a, b, draw) N(a, b | mean, sd) da db per draw, by adaptive Gauss-Hermite quadrature.

    `hazard`, `flags`: the cells' log rates without the force's terms (`offsets`); `mean`, `sd`: draws x terms (1: the
    intercept only, the CARA effect fixed at `fixed_effect`; 2: both)."""
    terms = mean.shape[1]
    hazard = hazard + fixed_effect[:, None] * data.hazard_cara
    flags = flags + fixed_effect[:, None] * data.flag_cara
    design_h = np.column_stack([np.ones_like(data.hazard_cara), data.hazard_cara])[:, :terms]
    design_f = np.column_stack([np.ones_like(data.flag_cara), data.flag_cara])[:, :terms]
    log_prior_norm = -np.log(sd).sum(1) - 0.5 * terms * np.log(2 * np.pi)

    def log_density(x, rows, derivatives=True):
        """Log integrand at x (rows x points x terms) for draws `rows`; with `derivatives`, also its first and second
        derivatives in the cells' log rates (for Newton's method)."""
        with np.errstate(over="ignore", invalid="ignore"):
            eta = hazard[rows, None, :] + x @ design_h.T
            rate = np.exp(eta)
            log_h = flags[rows, None, :] + x @ design_f.T
            cum = np.exp(log_h)
            risk = -np.expm1(-cum)  # 1 - exp(-H): P(reoffence)
            value = ((data.events * eta - rate).sum(-1) + (xlogy(data.k, risk) - (data.n - data.k) * cum).sum(-1)
                     - 0.5 * (((x - mean[rows, None]) / sd[rows, None]) ** 2).sum(-1))
            value = np.where(np.isfinite(value), value, -np.inf)
            if not derivatives:
                return value
            ratio = cum * np.exp(-cum) / risk  # H exp(-H) / (1 - exp(-H))
            flag_d1 = data.k * ratio - (data.n - data.k) * cum
            flag_d2 = data.k * ratio * (1 - cum / risk) - (data.n - data.k) * cum
        return value, (data.events - rate, -rate), (flag_d1, flag_d2)

    mode, curvature = _newton(log_density, mean, design_h, design_f, sd)
    scale = np.linalg.cholesky(np.linalg.inv(-curvature))  # draws x terms x terms
    points, weights = hermegauss(nodes)
    grid = np.stack(np.meshgrid(*[points] * terms, indexing="ij"), -1).reshape(-1, terms)
    log_w = np.log(np.stack(np.meshgrid(*[weights] * terms, indexing="ij"), -1).reshape(-1, terms)).sum(1)
    log_w = log_w + 0.5 * (grid**2).sum(1)
    cells = max(1, len(data.events) + len(data.k))
    chunk = max(1, _CHUNK_VALUES // (len(grid) * cells))
    result = np.empty(len(mean))
    for start in range(0, len(mean), chunk):
        rows = np.arange(start, min(start + chunk, len(mean)))
        x = mode[rows, None] + np.einsum("sij,kj->ski", scale[rows], grid)
        value = log_density(x, rows, derivatives=False)
        result[rows] = logsumexp(value + log_w, axis=1)
    log_det = np.log(np.diagonal(scale, axis1=1, axis2=2)).sum(1)
    return result + log_det + log_prior_norm + data.constant


def _hessian(hazard_d2, flag_d2, design_h, design_f, sd):
    """Second derivatives of the log integrand in the force's terms (draws x terms x terms)."""
    return (np.einsum("sc,ci,cj->sij", hazard_d2, design_h, design_h)
            + np.einsum("sc,ci,cj->sij", flag_d2, design_f, design_f)
            - np.eye(sd.shape[1]) / sd[:, None, :] ** 2)


def _newton(log_density, mean, design_h, design_f, sd, tolerance: float = 1e-8, max_steps: int = 100):
    """Mode of the (concave) log integrand per draw and its second derivatives there, from the prior mean: Newton's
    method, halving a draw's step where it does not rise."""
    x = mean.copy()
    rows = np.arange(len(x))
    value, hazard_d, flag_d = log_density(x[:, None], rows)
    value = value[:, 0]
    for _ in range(max_steps):
        gradient = (hazard_d[0][:, 0] @ design_h + flag_d[0][:, 0] @ design_f - (x - mean) / sd**2)
        curvature = _hessian(hazard_d[1][:, 0], flag_d[1][:, 0], design_h, design_f, sd)
        step = np.linalg.solve(-curvature, gradient[..., None])[..., 0]
        if np.abs(step).max() < tolerance:
            return x, curvature
        length = np.ones(len(x))
        for _ in range(60):
            trial = x + length[:, None] * step
            new_value, new_hazard_d, new_flag_d = log_density(trial[:, None], rows)
            rising = new_value[:, 0] >= value - 1e-12 * np.abs(value)
            if rising.all():
                break
            length = np.where(rising, length, length / 2)
        x, value = trial, new_value[:, 0]
        hazard_d, flag_d = new_hazard_d, new_flag_d
    raise RuntimeError(f"new-force integral: Newton's method did not converge in {max_steps} steps")


def log_density_as_new_force(model: pm.Model, posterior: xr.Dataset, slot: int, cells, priors: dict,
                             pooling: str) -> np.ndarray:
    """Per posterior draw, log p(cells of force `slot` | draw) with the force as one the model has never seen: its
    slope 0, its intercept and CARA effect integrated over what the pooling says of a new force. `model`: built on
    those cells only (indexed like the fit), `cells` its Cells."""
    data = ForceCells.of(cells)
    mean, sd, fixed_effect = new_force_prior(posterior, priors, pooling)
    return integrated_log_likelihood(data, *offsets(model, posterior, slot, pooling, data), mean, sd, fixed_effect)
