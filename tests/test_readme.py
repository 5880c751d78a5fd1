"""The README's tour runs as written, and its two commands are the ones CI and users run."""
import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_tour_runs():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README.md has no python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    dks, x = namespace["dks"], namespace["x"]
    assert dks.score(x, t=0.2).shape == (5, 2)
    assert np.all(np.isfinite(dks.log_density(x, t=0.2)))


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    assert len(commands) >= 2
    test_command = commands[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci  # .ci/run runs exactly the README's test command
