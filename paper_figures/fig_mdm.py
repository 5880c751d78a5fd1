"""MDM (arXiv 2302.07261), Table 2 on the 8 x 8 digits: held-out bits/dim of one network trained under VP,
CLD, ALDA, MALDA and a learned ``(Q, D)``.

Every process gets the same MLP (same widths, initial weights, batches, Adam and loss), on the logit data of
MDM's setting (uniform dequantisation, logit transform with ``alpha = 0.05``). The network is a correction
on a fixed Gaussian base: the score is the exact marginal score, under the process being trained, of the
Gaussian with the training digits' mean and covariance (:class:`opdiff.estimators.elbo.GaussianData`)
plus the network's score, so that every model starts from the same closed-form bound and the network only
has to learn what is not Gaussian (the generalisation of EDM's ``c_skip``, arXiv 2206.00364, to
auxiliary-variable processes). The figure shows the base's own bits/dim beside each network's.

The network is trained by the noise-prediction loss, the same for every process; the learned process
(``K = 2``, ``Q = G - G^T``, ``D = eps I + 2 B B^T / tr(B B^T)``: the noise budget of CLD) is learned jointly
with it from the ELBO's reparameterised gradient with respect to ``G`` and ``B`` at the current network
(:func:`opdiff.estimators.learned_sde.learned_elbo_gradient`, the base's marginals moving with the process).
MDM trains the network by the ELBO too. At this scale that objective failed under the auxiliary
processes. Its weight in noise units, ``beta L^{-1} 2D L^{-T}``, spans orders of magnitude in time. The
networks trained by it learned nothing beyond the base: MALDA went from 2.306 to 2.306 bits/dim after
5000 steps. Without the base, the same networks stayed above the uniform model after 10k steps.
Held-out bits/dim come from the importance-sampled ELBO with the Tweedie boundary decoder and control
variates.

The kernel smoother of the training digits (DKS) also has an exact ELBO; it memorises its training points,
so its held-out bound is dominated by the bandwidth ``t_min`` (thousands of bits/dim at ``t_min = 1e-3``): a
real but misleading number, shown on its own panel and not as a likelihood of the data.

The VP network's bits/dim also come from its probability-flow ODE (:func:`opdiff.sampling.log_likelihood`,
Hutchinson divergence through the network's backward pass).

``make(out_dir, size="quick")`` writes ``mdm_bits_per_dim.png`` and the ``mdm_bits_per_dim`` table (and
``mdm_details``) to ``results.json``. Weights are cached under ``out_dir/cache/mdm``, and so is their
evaluation (keyed by the settings and the checkpoints' hashes), so a second run only plots.
"""
import hashlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opdiff.datasets.images import DIGITS_LEVELS  # noqa: E402
from opdiff.estimators import DiffusionKernelSmoother  # noqa: E402
from opdiff.estimators.elbo import GaussianData, dsm_elbo, mean_elbo  # noqa: E402
from opdiff.estimators.learned_sde import learned_elbo_gradient, learned_process  # noqa: E402
from opdiff.metrics.likelihood import LogitTransform, bits_per_dim, dequantize  # noqa: E402
from opdiff.neural import MLP  # noqa: E402
from opdiff.neural.forms import GaussianForm  # noqa: E402
from opdiff.processes import StationaryLinearSDE  # noqa: E402
from paper_figures import cache_dir, cached, fingerprint, record_results, save_figure  # noqa: E402
from paper_figures._digits import SIZES, digits_split, fingerprint_of, output_folder, train  # noqa: E402

#: Table 2 of arXiv 2302.07261 (submission): bits/dim upper bounds.
PAPER_TABLE_2 = {"MNIST": {"VP": 1.0890, "CLD": 0.9200, "ALDA": 2.0610, "MALDA": 0.5069, "learned": 0.9600},
                 "CIFAR-10": {"VP": 3.36, "CLD": 3.563, "ALDA": 4.700, "MALDA": 2.634, "learned": 3.009}}
PROCESSES = ("VP", "CLD", "ALDA", "MALDA", "learned")
#: tr(D) of the learned process (CLD's, with mass 1: Gamma = 2).
NOISE_BUDGET = 2.0
LOGIT = LogitTransform(0.05)
#: Settings per run size on top of the shared ones: ELBO training steps, batch, distinct training times per
#: batch (rows share them in turn; the ELBO stays unbiased), importance-sampled time draws per held-out point
#: (the estimate's tails are heavy under the auxiliary processes: with one draw per point MALDA's Gaussian base
#: read 4.45 +- 0.56 bits/dim on the test size's 60 digits, with 16 draws 2.42 +- 0.18), digits of the DKS smoother,
#: PF-ODE steps.
EVALUATION = {"test": dict(n_steps=400, batch_size=32, time_groups=4, hidden=(128, 128), n_times=16, dks_train=200,
                          flow_steps=8),
              "quick": dict(n_steps=1500, batch_size=128, time_groups=8, hidden=(256, 256), n_times=32, dks_train=1500,
                            flow_steps=32),
              "full": dict(n_steps=20000, batch_size=256, time_groups=16, hidden=(512, 512, 512), n_times=64,
                           dks_train=1500, flow_steps=64)}

CAPTIONS = {
    "mdm_bits_per_dim.png": (
        "Analogue of Table 2 of arXiv 2302.07261 (MDM) on the 8 x 8 scikit-learn digits (17 grey levels). "
        "Left: held-out bits/dim (upper bound from the importance-sampled DSM ELBO with the boundary decoder; "
        "bars 2 standard errors) of the same MLP, trained by the noise-prediction loss as a correction on the "
        "exact score of the training digits' Gaussian (mean and covariance), under VP, CLD, ALDA, MALDA and a "
        "2-variable (Q, D) learned jointly with the network by the ELBO's gradient; circles: that Gaussian "
        "base alone, no network (the number at the foot of each bar: bits/dim the network saves over it, "
        "with its standard error from common random "
        "numbers); cross: the VP network's probability-flow ODE "
        "likelihood (of the data smoothed to t_min = 1e-3); dotted line: the uniform model, log2(17) = 4.09 "
        "bits/dim. Middle: the paper's Table 2 (MNIST, CIFAR-10; 1.5M / 35.7M-parameter U-Nets). Right: "
        "the exact ELBO of the kernel smoother (DKS) of the training digits on the same held-out digits, a "
        "model that memorises its training set: a real bound, but a statement about its bandwidth, not the "
        "data's likelihood."),
}


class JointModel:
    """An MLP and the learned process's parameters ``G``, ``B`` as one trainable object (one Adam, one
    weight average, one checkpoint).

    Parameters
    ----------
    network : MLP
    G, B : (K, K) arrays
    """

    def __init__(self, network, G, B):
        self.network = network
        self.params = {"G": np.array(G, dtype=np.float64), "B": np.array(B, dtype=np.float64)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def parameters(self):
        """The network's ``(index, name, array)`` list, then ``G`` and ``B``."""
        return self.network.parameters() + [(-1, k, v) for k, v in self.params.items()]

    def gradients(self):
        """Gradients in the order of :meth:`parameters`."""
        return self.network.gradients() + [(-1, k, self.grads[k]) for k in self.params]

    def forward(self, x, conditioning):
        """The network's forward pass."""
        return self.network.forward(x, conditioning)

    def backward(self, grad_out):
        """The network's backward pass (input gradient)."""
        return self.network.backward(grad_out)


def digits_logit_data(size, seed=0):
    """Training levels and held-out logit data ``(test (m, 64), mean log-Jacobian)`` of the digits."""
    train_images, test_images = digits_split(size["n_train"], size["n_test"], seed)
    to_levels = lambda images: np.round((images.reshape(images.shape[0], -1) + 1.0) * 8.0)  # noqa: E731
    test, ldj = LOGIT.forward(dequantize(to_levels(test_images), DIGITS_LEVELS, rng=seed + 1))
    return to_levels(train_images), test, ldj


def gaussian_base(levels, seed=2):
    """The Gaussian of the training digits' logit data (one dequantisation): mean and full covariance."""
    x, _ = LOGIT.forward(dequantize(levels, DIGITS_LEVELS, rng=seed))
    return GaussianData.fit(x)


def _process(name, model=None):
    if name == "learned":
        return learned_process(model.params["G"], model.params["B"], NOISE_BUDGET)
    return getattr(StationaryLinearSDE, name.lower())()


def network_score(process, network, base):
    """``score(y, t) = s_base(y, t) - L(t)^{-T} eps_hat(y, log t)``: the Gaussian base's exact score under
    ``process`` plus the score of a noise-prediction network.

    The network sees the raw state: scaling each block to unit variance (the velocity blocks by up to 10 at
    small ``t``) cut the networks' gain over the base under CLD from 0.11 to 0.04 bits/dim and under MALDA
    from 0.018 to 0.002 at "quick" size, with VP unchanged within its standard error."""
    base_score = base.marginal_score(process)

    def score(y, t):
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), (y.shape[0],))
        _, Sigma = process.transition(times)
        return base_score(y, times) - Sigma.cholesky().transpose().solve(network.forward(y, np.log(times)))
    return score


class VPFlowModel:
    """The VP-trained network as a model for :func:`opdiff.sampling.log_likelihood` (score and its VJP).

    Parameters
    ----------
    process : StationaryLinearSDE
        The VP process (``K = 1``).
    network : MLP
    base : GaussianData
    """

    def __init__(self, process, network, base):
        self.process, self.network, self.base = process, network, base

    def score(self, y, t):
        """``s_base - L^{-T} eps_hat``; ``(m, d)``."""
        return network_score(self.process, self.network, self.base)(y, t)

    def score_vjp(self, y, t, v):
        """``(d score / d y)^T v``: the base's closed form plus the network's backward pass; ``(m, d)``."""
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), (y.shape[0],))
        self.network.forward(y, np.log(times))
        Phi, Sigma = self.process.transition(times)
        _, precision = self.base.block_score(Phi.block, Sigma.block, y[:, None, :])
        return self.network.backward(-Sigma.cholesky().solve(v)) \
            + self.base.score_vjp(precision, v[:, None, :])[:, 0]


def flow_bits_per_dim(process, network, base, test, ldj, n_steps):
    """bits/dim of ``p_{t_min}`` by the probability-flow ODE (Hutchinson divergence): ``(value, s.e.)``."""
    from opdiff.sampling import log_likelihood

    result = log_likelihood(VPFlowModel(process, network, base), test, process=process, t_min=1e-3, n_steps=n_steps,
                            divergence="hutchinson", n_probes=2, rng=4)
    values = result.log_likelihood + ldj
    return (float(bits_per_dim(values.mean(), 64, n_levels=DIGITS_LEVELS)),
            float(values.std(ddof=1) / np.sqrt(values.size) / 64 / np.log(2)))


def noise_prediction_loss(process, forward, x, base, rng, time_groups, t_min=1e-3):
    """The noise-prediction DSM loss of a batch for a network that corrects the Gaussian ``base``.

    ``y = Phi lift(x) + L eps`` at times uniform on ``[t_min, T]`` (``time_groups`` distinct times shared by the
    rows in turn); the network output ``e`` is regressed onto ``eps - e_base`` with ``e_base = -L^T s_base``,
    so that the model's noise prediction is ``e_base + e``. The same loss, with the same weight, for every
    process (Ho et al., arXiv 2006.11239).

    Parameters
    ----------
    process : StationaryLinearSDE
    forward : callable
        ``forward(y (n, K d), t (n,)) -> (n, K d)``: the network's output.
    x : (n, d) array
    base : GaussianData
    rng : numpy.random.Generator
    time_groups : int
    t_min : float

    Returns
    -------
    loss : float
        Mean squared residual per coordinate.
    cotangent : (n, K d) array
        Its gradient with respect to the network output.
    """
    form = GaussianForm(process)
    t = rng.uniform(t_min, process.t_max, size=time_groups)[np.arange(x.shape[0]) % time_groups]
    y, eps = form.dsm_draw(x, t, rng)
    residual = forward(y, t) + form.to_noise(base.marginal_score(process)(y, t), y, t) - eps
    return float(np.mean(residual**2)), 2.0 * residual / residual.size


def train_process(name, levels, base, size, cache, seed=0):
    """Train the network by the noise-prediction loss as a correction on the Gaussian ``base`` (and, for
    ``"learned"``, ``(G, B)`` by the ELBO's gradient at the current network); returns the averaged model and
    the losses."""
    K = 2 if name == "learned" else _process(name).n_blocks
    network = MLP(K * 64, size["hidden"], rng=seed)
    init = np.random.default_rng(seed + 100)
    model = JointModel(network, 0.5 * init.standard_normal((K, K)), init.standard_normal((K, K)))
    batch = size["batch_size"]

    def step(joint, _, rng):
        x, _ = LOGIT.forward(dequantize(levels[rng.integers(levels.shape[0], size=batch)], DIGITS_LEVELS, rng=rng))
        forward = lambda y, t: joint.forward(y, np.log(t))  # noqa: E731
        if name == "learned":
            def vjp(y, t, cotangent):  # J^T cotangent through the network's input
                return joint.backward(cotangent)
            *_, grad_G, grad_B, _ = learned_elbo_gradient(
                joint.params["G"], joint.params["B"], x, forward, vjp, output="noise", noise_budget=NOISE_BUDGET,
                rng=rng, time_groups=size["time_groups"], base=base)
            joint.grads["G"][...], joint.grads["B"][...] = -grad_G, -grad_B  # Adam minimises
        loss, cotangent = noise_prediction_loss(_process(name, joint), forward, x, base, rng, size["time_groups"])
        joint.backward(cotangent)  # the network's parameter gradients (the ELBO's pass above is overwritten)
        return loss

    fingerprint = fingerprint_of(f"mdm-{name}", _process(name, model), levels, size, time_groups=size["time_groups"],
                                 noise_budget=NOISE_BUDGET, inputs="raw state",
                                 base="full-covariance Gaussian of the training logits", loss="noise prediction")
    loop = train(model, step, size["n_steps"], cache / f"{name}.npz", fingerprint, seed)
    return loop.average, np.asarray(loop.losses)


def held_out_bits_per_dim(process, score, test, ldj, n_times, seed=5, **options):
    """``(bits/dim, standard error)`` of the importance-sampled ELBO with decoder and controls."""
    result = mean_elbo(process, test, score, rng=seed, n_times=n_times, **options)
    bpd = float(bits_per_dim(result.estimate + ldj.mean(), 64, n_levels=DIGITS_LEVELS))
    return bpd, float(np.hypot(result.standard_error, ldj.std(ddof=1) / np.sqrt(ldj.size)) / 64 / np.log(2))


def paired_gain(process, score, base_score, test, n_times, seed=5):
    """``(gain, standard error)`` in bits/dim of ``score`` over ``base_score``: the mean and standard error
    of the per-point ELBO differences, both ELBOs drawn with the same random numbers."""
    values = [dsm_elbo(process, test, s, rng=seed, n_times=n_times) for s in (score, base_score)]
    difference = (values[0] - values[1]) / 64 / np.log(2)
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(difference.size))


def run(size_name, out_dir):
    """Train the five models (or read their weights), then evaluate them and the smoother (or read the
    evaluation cached for exactly these weights); returns the numbers the figure shows."""
    evaluation = EVALUATION[size_name]
    size = dict(SIZES[size_name], **{key: evaluation[key] for key in ("n_steps", "batch_size", "time_groups", "hidden")})
    cache = cache_dir(out_dir, "mdm")
    levels, test, ldj = digits_logit_data(size)
    base = gaussian_base(levels)
    trained = {name: train_process(name, levels, base, size, cache) for name in PROCESSES}
    weights = [hashlib.sha1((cache / f"{name}.npz").read_bytes()).hexdigest() for name in PROCESSES]
    return cached(cache / f"evaluation_{fingerprint(size_name, evaluation, weights)}.npz",
                  lambda: evaluate(trained, levels, base, test, ldj, evaluation))


def evaluate(trained, levels, base, test, ldj, evaluation):
    """Held-out bits/dim of the trained models, of their Gaussian base and of the smoother.

    Parameters
    ----------
    trained : dict
        ``{process name: (model, losses)}`` from :func:`train_process`.
    levels : (n, 64) array
        Training grey levels.
    base : GaussianData
    test, ldj : arrays
        Held-out logit data and their log-Jacobians.
    evaluation : dict
        The entry of :data:`EVALUATION`.

    Returns
    -------
    dict
    """
    ours, base_only, gains, losses, learned = {}, {}, {}, {}, {}
    for name, (model, losses[name]) in trained.items():
        process = _process(name, model)
        ours[name] = held_out_bits_per_dim(process, network_score(process, model, base), test, ldj,
                                           evaluation["n_times"])
        base_only[name] = held_out_bits_per_dim(process, base.marginal_score(process), test, ldj,
                                                evaluation["n_times"])
        gains[name] = paired_gain(process, network_score(process, model, base), base.marginal_score(process), test,
                                  evaluation["n_times"])
        if name == "learned":
            learned = {"Q": process.Q, "D": process.D}
        if name == "VP":
            flow = flow_bits_per_dim(process, model.network, base, test, ldj, evaluation["flow_steps"])
    smoother = {}
    rng = np.random.default_rng(3)
    train_logit, _ = LOGIT.forward(dequantize(levels[:evaluation["dks_train"]], DIGITS_LEVELS, rng=rng))
    for name in ("VP", "CLD"):
        process = _process(name)
        dks = DiffusionKernelSmoother(process).fit(train_logit)
        smoother[name] = held_out_bits_per_dim(process, dks.score, test, ldj, 1, time_quadrature=12)
    return dict(ours=ours, base=base_only, gains=gains, losses=losses, learned=learned, smoother=smoother, flow=flow)


def _ranking(values):
    return " < ".join(sorted(values, key=values.get))


def make(out_dir, size="quick"):
    """Train, evaluate and plot; returns the list of written PNG paths.

    Parameters
    ----------
    out_dir : str or pathlib.Path
    size : {"test", "quick", "full"}

    Returns
    -------
    list of str
    """
    size, out = output_folder(out_dir, size)
    numbers = run(size, out)
    ours = {name: value[0] for name, value in numbers["ours"].items()}
    uniform = float(np.log2(DIGITS_LEVELS))
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.6), gridspec_kw={"width_ratios": [1.1, 1.1, 0.8]})
    positions = np.arange(len(PROCESSES))
    axes[0].bar(positions, [ours[p] for p in PROCESSES], yerr=[2 * numbers["ours"][p][1] for p in PROCESSES],
                color="tab:blue", capsize=4)
    axes[0].axhline(uniform, color="k", ls=":", label=f"uniform model ({uniform:.2f})")
    axes[0].plot(positions, [numbers["base"][p][0] for p in PROCESSES], "o", mfc="none", mec="k", ms=7,
                 label="Gaussian base alone (no network)")
    for k, p in enumerate(PROCESSES):
        gain, gain_se = numbers["gains"][p]
        top = max(ours[p] + 2 * numbers["ours"][p][1], numbers["base"][p][0]) + 0.08
        axes[0].text(k, top, f"{ours[p]:.2f}", ha="center", va="bottom", fontsize=8)
        axes[0].text(k, 0.15, f"{gain:+.3f}\n\u00b1{gain_se:.3f}", ha="center", va="bottom", fontsize=6,
                     color="white")
    axes[0].plot([0.3], [numbers["flow"][0]], "kx", ms=9, label=f"VP, PF-ODE likelihood of p_t_min ({numbers['flow'][0]:.2f})")
    axes[0].set(xticks=positions, xticklabels=PROCESSES, ylabel="held-out bits / dim (upper bound)",
                title=f"ours: 8x8 digits, MLP on a Gaussian base, {EVALUATION[size]['n_steps']} steps")
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.12), frameon=False)
    width = 0.38
    for k, (dataset, table) in enumerate(PAPER_TABLE_2.items()):
        axes[1].bar(positions + (k - 0.5) * width, [table[p] for p in PROCESSES], width, label=dataset)
    axes[1].set(xticks=positions, xticklabels=PROCESSES, ylabel="bits / dim (upper bound)",
                title="paper, Table 2 of arXiv 2302.07261", ylim=(0, 6.8))
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2, frameon=False)
    paper_order, our_order = _ranking(PAPER_TABLE_2["MNIST"]), _ranking(ours)
    auxiliary = ("CLD", "ALDA", "MALDA")
    paper_auxiliary = _ranking({p: PAPER_TABLE_2["MNIST"][p] for p in auxiliary})
    our_auxiliary = _ranking({p: ours[p] for p in auxiliary})
    verdict = lambda same: "agrees with" if same else "differs from"  # noqa: E731
    gains = {p: numbers["gains"][p][0] for p in PROCESSES}
    axes[1].text(0.0, -0.24, f"ours: {our_order}\npaper (MNIST): {paper_order}\n"
                 f"the full order {verdict(paper_order == our_order)} the paper's\n"
                 f"among {', '.join(auxiliary)}, ours {our_auxiliary}\n"
                 f"{verdict(paper_auxiliary == our_auxiliary)} the paper's\n"
                 f"the networks save {min(gains[p] for p in auxiliary):.3f}-{max(gains[p] for p in auxiliary):.3f}"
                 f" bits/dim over the Gaussian base\nunder {', '.join(auxiliary)}, {gains['learned']:.3f} under "
                 f"the learned process, {gains['VP']:.3f} under VP\n"
                 f"(small MLP, {EVALUATION[size]['n_steps']} steps, 8x8 digits)", transform=axes[1].transAxes,
                 va="top", fontsize=8, bbox=dict(facecolor="white", alpha=0.85, edgecolor="0.7"))
    names = list(numbers["smoother"])
    axes[2].bar(names, [numbers["smoother"][n][0] for n in names], color="tab:red")
    axes[2].axhline(uniform, color="k", ls=":")
    axes[2].set(yscale="log", ylabel="held-out bits / dim (log scale)",
                title="DKS smoother (memorises): misleading")
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    path = save_figure(fig, out / "mdm_bits_per_dim.png", caption=CAPTIONS["mdm_bits_per_dim.png"])
    record_results(out, "mdm_bits_per_dim", ours)
    record_results(out, "mdm_details", {
        "standard_error": {p: numbers["ours"][p][1] for p in PROCESSES}, "uniform": uniform,
        "paper_table_2": PAPER_TABLE_2, "smoother_bits_per_dim_misleading": {n: v[0] for n, v in numbers["smoother"].items()},
        "learned_Q": numbers["learned"]["Q"], "learned_D": numbers["learned"]["D"],
        "gaussian_base_bits_per_dim": {p: numbers["base"][p][0] for p in PROCESSES},
        "network_gain_bits_per_dim": {p: numbers["gains"][p][0] for p in PROCESSES},
        "network_gain_standard_error": {p: numbers["gains"][p][1] for p in PROCESSES},
        "final_training_noise_loss": {p: float(np.mean(v[-20:])) for p, v in numbers["losses"].items()},
        "vp_pf_ode_bits_per_dim": numbers["flow"][0], "vp_pf_ode_standard_error": numbers["flow"][1],
        "ranking_ours": our_order, "ranking_paper_mnist": paper_order,
        "ranking_auxiliary_ours": our_auxiliary, "ranking_auxiliary_paper_mnist": paper_auxiliary, "size": size})
    return [str(path)]


if __name__ == "__main__":
    print(make("figures"))
