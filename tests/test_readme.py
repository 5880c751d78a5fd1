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
    assert dks.score(x, t=0.2).shape == (5, 2)
    assert np.all(np.isfinite(dks.log_density(x, t=0.2)))


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
