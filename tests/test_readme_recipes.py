"""The README's recipes (a loss, a sampler, a network) run verbatim from the command line.

Each `### Recipe: ...` section of README.md holds a python block whose first line names
the file it goes to (`# my_project/losses.py`) and a bash block with the command to run
(`python -m gen_jax.main --import=... --config=... --config.<field>=<name>`). The test
writes the file into a temporary directory on PYTHONPATH, runs the command from the
repository root with only its --workdir moved into the temporary directory, and checks
that the run trained and that config.json records each --config.<field>=<value> it gave.
"""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.train.helpers import REPO


def readme_recipes() -> dict[str, tuple[str, str, str]]:
  """{heading: (file path, python source, command)} of README's '### Recipe:' sections."""
  text = (REPO / "README.md").read_text()
  recipes = {}
  for section in re.split(r"^### ", text, flags=re.M)[1:]:
    heading = section.splitlines()[0].strip()
    if not heading.lower().startswith("recipe:"):
      continue
    section = re.split(r"^## ", section, flags=re.M)[0]
    python = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    bash = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert python and bash, f"README section {heading!r} needs a python and a bash block"
    source = python[0]
    path = re.match(r"#\s*(\S+\.py)\s*\n", source)
    assert path, f"README section {heading!r}: the python block's first line names its file"
    command = " ".join(bash[0].replace("\\\n", " ").split())
    recipes[heading] = (path.group(1), source, command)
  return recipes


RECIPES = readme_recipes()


def test_readme_has_a_loss_a_sampler_and_a_network_recipe():
  headings = " ".join(RECIPES).lower()
  for kind in ("loss", "sampler", "network"):
    assert kind in headings, f"README has no '### Recipe: ...{kind}' section"


# Each recipe is a command-line run (~18 s): the network and loss recipes run by default,
# the others (same code path: an --import'ed registration, then a trainer run) with --runslow.
@pytest.mark.parametrize("heading", [
    h if ("network" in h.lower() or h.lower().endswith("a loss")) else
    pytest.param(h, marks=pytest.mark.slow) for h in sorted(RECIPES)])
def test_readme_recipe_runs_from_the_command_line(heading, tmp_path):
  path, source, command = RECIPES[heading]
  (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
  (tmp_path / path).write_text(source)
  argv = shlex.split(command)
  assert argv[:3] == ["python", "-m", "gen_jax.main"], command
  assert any(a.startswith("--import=") for a in argv), command
  workdir = tmp_path / "run"
  argv = [sys.executable, *argv[1:]]
  argv = [f"--workdir={workdir}" if a.startswith("--workdir=") else a for a in argv]
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO), env.get("PYTHONPATH", "")])
  out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  config = json.loads((workdir / "config.json").read_text())
  assert list((workdir / "checkpoints").iterdir())
  for arg in argv:
    match = re.match(r"--config\.([\w.]+)=(.*)", arg)
    if match:
      value = config
      for part in match.group(1).split("."):
        value = value[part]
      assert str(value) == match.group(2), (arg, value)
