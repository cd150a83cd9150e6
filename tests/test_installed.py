"""After a plain (non-editable) install of the wheel, tsmoe finds its shipped data and recipes anywhere.

The wheel is built from this checkout and installed into a folder of its own; the commands then run
from an empty working folder with site-packages processing off (``python -S``), so this checkout's
editable install cannot stand in for the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    wheels, target = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True)
    wheel = next(wheels.glob("tsmoe-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


def tsmoe(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TSMOE_DATA", "PYTHONPATH")}
    env |= {"PYTHONPATH": os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"]]), "OMP_NUM_THREADS": "1"}
    code = "import sys, tsmoe.cli as c; assert c.__file__.startswith(sys.argv[1]); sys.exit(c.main(sys.argv[2:]))"
    return subprocess.run([sys.executable, "-S", "-c", code, str(installed), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


@pytest.mark.slow
def test_the_installed_package_lists_trains_and_demos_from_its_shipped_files(installed, tmp_path):
    listed = tsmoe(installed, tmp_path, "datasets")
    assert listed.returncode == 0, listed.stderr
    assert "physionet2012" in listed.stdout and "mome_timemmd" in listed.stdout
    sets = ["--set", "training.max_epochs=1", "--set", "data.horizon=24", "--set", "trainer.accelerator=cpu"]
    trained = tsmoe(installed, tmp_path, "train", "configs/dlinear-etth1.yaml", "--out", "run", *sets)
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "metrics.json").exists()
    tuned = tsmoe(installed, tmp_path, "tune", "dlinear-etth1", "--space", "configs/spaces/dlinear-etth1.yaml",
                  "--trials", "1", "--out", "study", *sets)  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr
    assert (tmp_path / "study" / "best.yaml").exists()
    demo = tsmoe(installed, tmp_path, "demo", "--out", "demo", "--set", "training.max_epochs=1",
                 "--set", "trainer.accelerator=cpu")  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (tmp_path / "demo" / "mrmoe" / "report.html").exists()
