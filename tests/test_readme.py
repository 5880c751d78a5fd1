"""The README's tour runs as written, and its two commands are the ones CI and users run."""
import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_tour_runs():
    assert BLOCKS, "README.md has no python example"
    namespace = {}
    exec(compile(BLOCKS[0], "README.md", "exec"), namespace)
    dks, x = namespace["dks"], namespace["x"]
    score = dks.score(x, t=0.2)
    assert score.shape == (5, 2)
    # the score is the gradient of the log-density it prints: central differences, O(h^2) truncation
    # plus ~1e-16 |log rho| / h round-off, both < 1e-9 here (measured 3e-11)
    h = 1e-5
    fd = np.stack([(dks.log_density(x + h * e, t=0.2) - dks.log_density(x - h * e, t=0.2)) / (2 * h)
                   for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(score, fd, atol=1e-8)


def test_second_tour_runs_and_does_what_it_says():
    assert len(BLOCKS) >= 2
    namespace = {}
    exec(compile(BLOCKS[1], "README.md", "exec"), namespace)
    samples, X = namespace["samples"], namespace["X"]
    # the last step returns D(x, sigma_min): a softmax average of training points at bandwidth
    # sigma_min = 0.01, so every sample lies within a few sigma_min of the data (memorisation)
    nearest = np.min(np.linalg.norm(samples[:, None] - X[None], axis=2), axis=1)
    assert np.median(nearest) < 0.01 and nearest.max() < 0.05
    assert namespace["nfe"] == 2 * 32 - 1  # Heun: two evaluations a step, one on the last step to 0
    assert np.isfinite(namespace["rdks"].time_)


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    assert len(commands) >= 2
    test_command = commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci  # .ci/run runs exactly the README's test command
