"""Bandwidth selection and held-out likelihood: opdiff's select_time against scikit-learn's GridSearchCV.

Run: ``NUMBA_NUM_THREADS=2 python3 -m pytest benchmarks/bench_selection.py --benchmark-enable -p no:cacheprovider -s``.

Groups ``select-n4000`` and ``select-n12000``: on S^2, ``DiffusionKernelSmoother(ManifoldBrownianMotion(
Hypersphere(2)), adaptive="auto").select_time(X)`` (5 folds, its default grid: 12 times, the global rule,
power laws 1/2 and 1, nearest neighbours k = 10, 30, 100) against ``GridSearchCV(KernelDensity(
metric="haversine"), 12 bandwidths, cv=5)`` on the same data, one round each, in one run.

``test_heldout_table``: held-out log-likelihood per point on multi-scale data with repeated points (a vMF
mixture on S^2 with concentrations 5 to 5,000 plus three atoms holding 5% of the mass; the same idea on T^2
and R^2), for the global, power-law and nearest-neighbour smoothers and "auto" (each chosen by its own 5-fold
select_time on the training set) and scikit-learn's KDE chosen by GridSearchCV. Printed with ``-s``.
"""
import math

import numpy as np
import pytest
from scipy.integrate import quad

from opdiff.datasets import GaussianMixture, VonMisesFisherMixture, unit_to_latlon
from opdiff.estimators import DiffusionKernelSmoother
from opdiff.manifolds import FlatTorus, Hypersphere
from opdiff.processes import BrownianMotion, ManifoldBrownianMotion

BANDWIDTHS = np.geomspace(0.005, 0.5, 12)  # radians (sphere) / data units: the sklearn grid
ATOM_SHARE = 0.05


def _with_atoms(X, rng):
    """Replace 5% of the points by copies of three of them (repeated locations)."""
    n_atoms = int(ATOM_SHARE * X.shape[0])
    X = X.copy()
    X[rng.permutation(X.shape[0])[:n_atoms]] = X[rng.integers(0, 3, n_atoms)]
    return X


def sphere_data(n, seed):
    rng = np.random.default_rng(100)
    means = rng.normal(size=(6, 3))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    mixture = VonMisesFisherMixture(means, [5.0, 20.0, 80.0, 300.0, 1200.0, 5000.0], [0.3, 0.2, 0.15, 0.15, 0.1, 0.1])
    return _with_atoms(mixture.sample(n, seed), np.random.default_rng(seed + 1))


def torus_data(n, seed):
    rng = np.random.default_rng(seed)
    scales = np.array([1.0, 0.3, 0.08, 0.02])[rng.integers(0, 4, n)]
    centres = np.array([[0.0, 0.0], [2.0, -2.0], [-2.5, 1.0], [1.0, 2.5]])[rng.integers(0, 4, n)]
    return _with_atoms(FlatTorus(2).proj(centres + scales[:, None] * rng.normal(size=(n, 2))), rng)


def plane_data(n, seed):
    spreads = np.array([1.0, 0.3, 0.08, 0.02]) ** 2
    mixture = GaussianMixture([0.4, 0.3, 0.2, 0.1], [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]],
                              spreads[:, None, None] * np.eye(2))
    return _with_atoms(mixture.sample(n, seed), np.random.default_rng(seed + 1))


def _latlon(x):
    lat, lon = unit_to_latlon(x)
    return np.radians(np.stack([lat, lon], axis=1))


def _haversine_renormaliser(h):
    """``log 2 pi h^2 - log int_{S^2} exp(-d^2 / 2 h^2)``: sklearn's planar normaliser replaced by the sphere's."""
    value = quad(lambda u: math.exp(-u * u / (2 * h * h)) * math.sin(u), 0, math.pi, points=[h], limit=200)[0]
    return math.log(2 * math.pi * h * h) - math.log(2 * math.pi * value)


def sklearn_search(X, metric):
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KernelDensity

    data = _latlon(X) if metric == "haversine" else X
    search = GridSearchCV(KernelDensity(kernel="gaussian", metric=metric), {"bandwidth": BANDWIDTHS}, cv=5)
    return search.fit(data)


@pytest.mark.parametrize("n", [4000, 12000])
@pytest.mark.parametrize("estimator", ["opdiff-auto", "sklearn-gridsearch"])
def test_selection_speed(benchmark, n, estimator):
    pytest.importorskip("sklearn")
    benchmark.group = f"select-n{n}"
    X = sphere_data(n, 0)
    if estimator == "opdiff-auto":
        smoother = DiffusionKernelSmoother(ManifoldBrownianMotion(Hypersphere(2)), adaptive="auto")
        fitted = benchmark.pedantic(smoother.select_time, args=(X,), kwargs={"n_folds": 5, "rng": 0},
                                    rounds=1, iterations=1)
        benchmark.extra_info.update(rule=fitted.rule_, time=fitted.time_, exponent=fitted.exponent_, k=fitted.k_,
                                    candidates=int(np.sum(np.isfinite(fitted.selection_.scores))))
        assert np.isfinite(fitted.selection_.scores).any()
    else:
        search = benchmark.pedantic(sklearn_search, args=(X, "haversine"), rounds=1, iterations=1)
        benchmark.extra_info.update(bandwidth=float(search.best_params_["bandwidth"]))


CASES = {
    "S^2": (lambda: ManifoldBrownianMotion(Hypersphere(2)), sphere_data, "haversine"),
    "T^2": (lambda: ManifoldBrownianMotion(FlatTorus(2)), torus_data, "euclidean"),
    "R^2": (lambda: BrownianMotion(T=20.0), plane_data, "euclidean"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_heldout_table(case):
    pytest.importorskip("sklearn")
    make_process, make_data, metric = CASES[case]
    X, test = make_data(2000, 0), make_data(2000, 7)
    rows = {}
    for label, adaptive in (("global", None), ("power law", "power"), ("nearest neighbour", "knn"), ("auto", "auto")):
        smoother = DiffusionKernelSmoother(make_process(), adaptive=adaptive).select_time(X, n_folds=5, rng=0)
        parameter = smoother.exponent_ if smoother.rule_ == "power" else smoother.k_
        rows[f"opdiff {label}"] = (smoother.score(test), f"{smoother.rule_} {parameter or ''} t={smoother.time_:.3g}")
    search = sklearn_search(X, metric)
    h = float(search.best_params_["bandwidth"])
    raw = search.best_estimator_.score_samples(_latlon(test) if metric == "haversine" else test).mean()
    shift = _haversine_renormaliser(h) if metric == "haversine" else 0.0
    rows["scikit-learn KDE"] = (raw + shift, f"h={h:.3g}" + (" (renormalised on S^2)" if shift else ""))
    print(f"\n{case}: held-out log-likelihood per point (2000 train, 2000 test, 5% of the mass on 3 atoms)")
    for name, (value, detail) in rows.items():
        print(f"  | {case} | {name} | {detail} | {value:.4f} |")
    assert rows["opdiff auto"][0] >= rows["opdiff global"][0] - 0.05
