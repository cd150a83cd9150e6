"""``tsmoe report``: one self-contained page per run, every section rendered and no image broken, checked
in headless Chromium (Debian's ``chromium``), for a sparse-MoE forecaster and for MR-MoE."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tsmoe.cli import main, write_run_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]  # fmt: skip


@pytest.fixture(scope="module")
def mome_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("report") / "mome"
    sets = ["data.domain=SocialGood", "data.text_encoder=hashing", "training.max_epochs=2", "trainer.accelerator=cpu"]
    assert main(["train", "configs/mome-mome_timemmd.yaml", "--out", str(run), *[f"--set={s}" for s in sets]]) == 0
    return run


@pytest.fixture(scope="module")
def mrmoe_run(small_physionet, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("report") / "mrmoe"
    sets = ["model.hidden_size=8", "model.d_model=8", "model.backbone_units=16", "training.max_epochs=1",
            "trainer.accelerator=cpu", "data.split_file=null", f"data.root={small_physionet}",
            "training.calibrate=temperature"]  # fmt: skip
    assert main(["train", "configs/mrmoe-physionet2012.yaml", "--out", str(run), *[f"--set={s}" for s in sets]]) == 0
    return run


def report_section_ids(run_dir: Path) -> list[str]:
    """The section ids the run's report.html has."""
    text = (Path(run_dir) / "report.html").read_text()
    return [part.split('"')[0] for part in text.split('<section id="')[1:]]


def rendered_body(page: Path, tmp_path: Path) -> str:
    """The ``<body>`` tag of the page after Chromium loaded it and ran its image check."""
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                             page.resolve().as_uri()], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_mome_report_has_every_section(mome_run, capsys):
    assert main(["report", str(mome_run)]) == 0
    assert f"report: {mome_run / 'report.html'}" in capsys.readouterr().out
    assert report_section_ids(mome_run) == ["summary", "training", "forecasts", "usage", "specialisation", "text",
                                            "bound", "spectral"]  # fmt: skip
    page = (mome_run / "report.html").read_text()
    assert "bound holds" in page and "<td>True</td>" in page  # the bound held on the trained model
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing fetched


def test_mrmoe_report_has_its_sections(mrmoe_run):
    write_run_report(mrmoe_run)
    assert report_section_ids(mrmoe_run) == ["summary", "training", "calibration", "usage", "features", "stays",
                                             "liquid"]  # fmt: skip
    page = (mrmoe_run / "report.html").read_text()
    assert "<th>ECE</th>" in page and "<td>temperature " in page and "95 % bootstrap interval" in page


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed: `apt-get install chromium`")
@pytest.mark.parametrize("which", ["mome_run", "mrmoe_run"])
def test_report_renders_in_headless_chromium(which, request, tmp_path):
    run = request.getfixturevalue(which)
    page = write_run_report(run)
    dom = rendered_body(page, tmp_path)
    body = re.search(r"<body[^>]*>", dom).group(0)
    images = int(re.search(r'data-images="(\d+)"', body).group(1))
    assert images >= 3 and 'data-broken-images="0"' in body, body
    for section in report_section_ids(run):
        assert f'<section id="{section}">' in dom


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed: `apt-get install chromium`")
def test_the_browser_check_catches_a_broken_image(mome_run, tmp_path):
    page = tmp_path / "broken.html"
    text = write_run_report(mome_run).read_text()
    page.write_text(text.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    body = re.search(r"<body[^>]*>", rendered_body(page, tmp_path)).group(0)
    assert 'data-broken-images="1"' in body
