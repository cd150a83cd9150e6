"""Shared fixtures: an isolated cache, and small real-data folders in the published layouts."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import pytest

from tsmoe.paths import shipped_data_dir


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test session parses into its own cache folder (nothing outside the test tree is touched)."""
    import os

    os.environ["TSMOE_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True)
def _fresh_data_notes() -> None:
    """Each test reads its data as a new process would: the data readers' notes (said once per process)
    are warnings again."""
    from tsmoe.data.notes import forget

    forget()


def _outcomes_lines(set_name: str) -> dict[int, str]:
    path = shipped_data_dir() / "physionet2012" / f"Outcomes-{set_name}.txt.gz"
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    return {int(line.split(",")[0]): line for line in lines[1:]}, lines[0]


def make_physionet_folder(root: Path, set_name: str, count: int, offset: int = 0, with_outcomes: bool = True) -> Path:
    """Copy ``count`` real stays of shipped set ``a`` into ``root/set-<set_name>/`` with their outcomes."""
    stays = root / f"set-{set_name}"
    stays.mkdir(parents=True)
    outcomes, header = _outcomes_lines("a")
    kept = []
    with tarfile.open(shipped_data_dir() / "physionet2012" / "set-a.tar.gz", "r|gz") as archive:
        for member in archive:
            if not member.name.endswith(".txt"):
                continue
            if offset:
                offset -= 1
                continue
            handle = archive.extractfile(member)
            (stays / Path(member.name).name).write_bytes(handle.read())
            kept.append(int(Path(member.name).stem))
            if len(kept) == count:
                break
    if with_outcomes:
        (root / f"Outcomes-{set_name}.txt").write_text("\n".join([header] + [outcomes[k] for k in kept]) + "\n")
    return root


@pytest.fixture(scope="session")
def small_physionet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 real stays of set A in PhysioNet's published layout (a folder of stay files + outcomes)."""
    return make_physionet_folder(tmp_path_factory.mktemp("p12small"), "x", 400)


@pytest.fixture(scope="session")
def other_physionet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 other real stays, as a second copy of the same kind of data (never trained on)."""
    return make_physionet_folder(tmp_path_factory.mktemp("p12other"), "y", 200, offset=1000)
