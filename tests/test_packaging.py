"""The wheel built from this checkout carries the rubrics and prompts and works from any directory."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs_elsewhere(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    # build from a clean clone of the committed tree when possible, so untracked files cannot leak in
    src = tmp_path / "src"
    cloned = subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], capture_output=True).returncode == 0
    if not (cloned and (src / "rubrics").is_dir()):  # not a repository (an sdist, a copy) or nothing committed
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv*", "__pycache__", "dist", "build"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                   check=True)
    wheel = next(wheels.glob("mlgrade-*.whl"))

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    target_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                      capture_output=True, text=True, check=True).stdout.strip())
    # the fresh venv gets the wheel itself; its dependencies come from this interpreter's site-packages
    # through a .pth line (an editable mlgrade there is not activated: nested .pth files are not read)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target_site), str(wheel)],
                   check=True)
    (target_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "MLGRADE_HOME": str(tmp_path / "home")}
    env.pop("MLGRADE_RUBRICS", None)
    env.pop("PYTHONPATH", None)  # a checkout's src on it (as in development) would be imported instead of the wheel
    where = subprocess.run([str(py), "-c", "import mlgrade; print(mlgrade.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert str(target_site) in where, "the fresh venv must import the wheel, not the checkout"
    entry = [str(py), "-c", "from mlgrade.cli import main; main()"]
    listed = subprocess.run([*entry, "questions", "list", "--json"], cwd=elsewhere, env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 25
    valid = subprocess.run([*entry, "rubrics", "validate"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert valid.returncode == 0, valid.stderr
    assert "site-packages" in valid.stdout  # validated the packaged bank, not the checkout's
    prompts = list((target_site / "mlgrade" / "prompts").glob("*.md"))
    assert prompts, "prompts/ must ship inside the wheel"
    builtin = target_site / "mlgrade" / "evaluation" / "builtin"
    shipped = {p.name: sum(1 for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
               for p in builtin.glob("*.jsonl")}
    assert shipped == {"seed-dev.jsonl": 125, "seed-dev2.jsonl": 150}, "the built-in expert sets must ship in the wheel"
    assert (builtin / "NOTE.md").is_file()
