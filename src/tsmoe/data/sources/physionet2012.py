"""PhysioNet/CinC Challenge 2012: ICU stays as irregular multivariate series, in-hospital death as label.

Reads the layout PhysioNet publishes, from ``root`` (default: the shipped copy of sets A and B):
``set-<x>/`` (a folder of per-stay ``<RecordID>.txt`` files) or ``set-<x>.tar.gz``, beside
``Outcomes-<x>.txt`` (or ``.txt.gz``). Each stay file has the header ``Time,Parameter,Value``; ``Time``
is ``HH:MM`` since admission.

Parsing rules (see also ``docs/DATA.md``):
- Rows at ``00:00`` named ``RecordID, Age, Gender, Height, ICUType, Weight`` are static descriptors.
  ``Weight`` at ``00:00`` is the static admission weight; later ``Weight`` rows are time-varying.
- ``-1`` in a static descriptor means missing (NaN).
- The rows become steps by the path every irregular source takes (:mod:`tsmoe.data.observations`):
  time-varying rows sharing a timestamp form one step; repeated measurements of one variable at one
  timestamp are averaged.
- A stay with no time-varying measurement is kept (static descriptors only) and counted in the log.
- An unknown parameter name, a malformed time or a non-numeric value raises :class:`DataError`
  naming the file and line.
"""

from __future__ import annotations

import gzip
import logging
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tsmoe.data.adapter import IrregularAdapter, check_split_fractions
from tsmoe.data.cache import cached_arrays, hash_files
from tsmoe.data.irregular import IrregularSet, Scaling
from tsmoe.data.notes import note
from tsmoe.data.observations import ObservationRows, Steps, rows_to_steps
from tsmoe.data.parsing import FLOAT32_MAX
from tsmoe.data.splits import IdSplit
from tsmoe.errors import DataError
from tsmoe.paths import shipped_data_dir

log = logging.getLogger(__name__)
UnknownPolicy = Literal["error", "skip"]

VARIABLES: tuple[str, ...] = (
    "ALP", "ALT", "AST", "Albumin", "BUN", "Bilirubin", "Cholesterol", "Creatinine", "DiasABP", "FiO2",
    "GCS", "Glucose", "HCO3", "HCT", "HR", "K", "Lactate", "MAP", "MechVent", "Mg", "NIDiasABP", "NIMAP",
    "NISysABP", "Na", "PaCO2", "PaO2", "Platelets", "RespRate", "SaO2", "SysABP", "Temp", "TroponinI",
    "TroponinT", "Urine", "WBC", "Weight", "pH",
)  # fmt: skip
STATIC: tuple[str, ...] = ("Age", "Gender", "Height", "ICUType", "Weight")
LABEL = "In-hospital_death"
_VARIABLE_INDEX = {name: i for i, name in enumerate(VARIABLES)}
_STATIC_INDEX = {name: i for i, name in enumerate(STATIC)}


def default_root() -> Path:
    return shipped_data_dir() / "physionet2012"


def find_sets(root: Path) -> dict[str, tuple[Path, Path]]:
    """Map each set name (``a``, ``b``, ...) in ``root`` to its (stays, outcomes) paths."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"PhysioNet 2012 root '{root}' is not a folder")
    sets: dict[str, tuple[Path, Path]] = {}
    for stays in sorted(root.glob("set-*")):
        name = stays.name.removeprefix("set-").removesuffix(".tar.gz")
        if not (stays.is_dir() or stays.name.endswith(".tar.gz")) or name in sets:
            continue
        outcomes = next(
            (p for p in (root / f"Outcomes-{name}.txt", root / f"Outcomes-{name}.txt.gz") if p.exists()), None
        )
        if outcomes is None:
            raise DataError(f"'{stays}' has no outcomes file beside it: expected '{root / f'Outcomes-{name}.txt'}'")
        sets[name] = (stays, outcomes)
    if not sets:
        raise DataError(
            f"no PhysioNet 2012 set in '{root}': expected set-<x>/ or set-<x>.tar.gz beside Outcomes-<x>.txt"
        )
    return sets


def _stay_files(stays: Path) -> Iterator[tuple[str, str]]:
    """Yield (file name, text) of every ``*.txt`` stay file in a folder or a tar.gz, sorted by name."""
    if stays.is_dir():
        for path in sorted(stays.glob("*.txt")):
            yield str(path), _decoded(path.read_bytes(), str(path))
        return
    # one sequential pass: seeking back in a gzip stream re-reads it from the start
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(stays, "r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.endswith(".txt"):
                    handle = archive.extractfile(member)
                    assert handle is not None
                    files[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as error:  # truncated, not gzip, not a tar
        raise DataError(
            f"file '{stays}' is not a readable .tar.gz of stay files ({error}); was it downloaded whole?"
        ) from None
    for name in sorted(files):
        yield f"{stays}:{name}", _decoded(files[name], f"{stays}:{name}")


def _decoded(raw: bytes, where: str) -> str:
    """A stay file's text; a file that is not text is a :class:`DataError` naming it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"stay file '{where}' is not text (not UTF-8): a binary file where a stay belongs") from None


def _read_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as handle:
            return handle.read()
    return path.read_text()


def _parse_outcomes(path: Path, label: str) -> dict[int, float]:
    """RecordID -> outcome in column ``label``. ``In-hospital_death`` must be 0 or 1; in the other
    columns (``Length_of_stay``, ``SAPS-I``, ``SOFA``, ``Survival``) ``-1`` means missing (NaN)."""
    lines = _read_text(path).splitlines()
    if not lines:
        raise DataError(f"file '{path}' is empty: expected a header with RecordID and {label}")
    header = lines[0].strip().split(",")
    if "RecordID" not in header or label not in header:
        raise DataError(f"file '{path}', header: columns 'RecordID' and '{label}' are required, got {header}")
    id_col, label_col = header.index("RecordID"), header.index(label)
    labels: dict[int, float] = {}
    for row, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        try:
            record, value = int(fields[id_col]), float(fields[label_col])
        except (ValueError, IndexError):
            raise DataError(f"file '{path}', row {row}: cannot read RecordID and {label} from '{line}'") from None
        if label == LABEL and value not in (0, 1):
            raise DataError(
                f"file '{path}', column '{LABEL}', row {row}: label must be 0 or 1, got {fields[label_col]}"
            )
        labels[record] = np.nan if (label != LABEL and value == -1) else value
    return labels


def _parse_hours(text: str, name: str, row: int) -> float:
    hours, sep, minutes = text.partition(":")
    if not (
        sep and hours.isascii() and hours.isdigit() and minutes.isascii() and minutes.isdigit() and int(minutes) < 60
    ):
        raise DataError(f"file '{name}', column 'Time', row {row}: expected HH:MM, got '{text}'")
    return int(hours) + int(minutes) / 60.0


@dataclass
class StayRows:
    """One stay file's time-varying rows (hours since admission, variable index, value) and its static
    descriptors ``(P,)``."""

    record_id: int
    hours: list[float]
    variables: list[int]
    values: list[float]
    static: np.ndarray


def stay_rows(name: str, text: str, skipped: Counter[str] | None = None, unknown: UnknownPolicy = "error") -> StayRows:
    """Read one stay file's rows (the module's rules).

    Rows whose ``Parameter`` field is empty (as some distributed copies of the set hold) carry no
    measurement: they are skipped and counted in ``skipped["empty parameter"]``. A parameter name that is
    not one of the set's is an error, or, with ``unknown="skip"``, skipped and counted in
    ``skipped["unknown parameter"]``. A byte-order mark and Windows line ends are read as any editor
    reads them."""
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or lines[0].strip() != "Time,Parameter,Value":
        raise DataError(f"file '{name}', row 0: expected the header 'Time,Parameter,Value'")
    static = np.full(len(STATIC), np.nan)
    record_id: int | None = None
    hours_of_rows: list[float] = []
    variables: list[int] = []
    values: list[float] = []
    for row, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 3:
            raise DataError(f"file '{name}', row {row}: expected 3 fields, got '{line}'")
        time_text, parameter, value_text = fields
        if not parameter.strip():
            if skipped is not None:
                skipped["empty parameter"] += 1
            continue
        try:
            value = float(value_text)
        except ValueError:
            raise DataError(f"file '{name}', column 'Value', row {row}: '{value_text}' is not a number") from None
        if not abs(value) <= FLOAT32_MAX:  # NaN, infinite, or too large for float32
            raise DataError(f"file '{name}', column 'Value', row {row}: '{value_text}' is NaN, infinite or too large")
        hours = _parse_hours(time_text, name, row)
        if parameter == "RecordID":
            if value != int(value) or not -(2**63) <= int(value) < 2**63:
                raise DataError(f"file '{name}', row {row}: RecordID '{value_text}' is not a whole number (64-bit)")
            record_id = int(value)
        elif parameter in _STATIC_INDEX and hours == 0.0:
            static[_STATIC_INDEX[parameter]] = np.nan if value == -1 else value
        elif parameter in _VARIABLE_INDEX:
            hours_of_rows.append(hours)
            variables.append(_VARIABLE_INDEX[parameter])
            values.append(value)
        elif unknown == "skip":
            if skipped is not None:
                skipped["unknown parameter"] += 1
        else:
            raise DataError(
                f"file '{name}', column 'Parameter', row {row}: unknown parameter '{parameter}' "
                f"(known: {', '.join(VARIABLES + STATIC)}; data.unknown_parameters: skip skips such rows)"
            )
    if record_id is None:
        raise DataError(f"file '{name}': no RecordID row")
    return StayRows(record_id, hours_of_rows, variables, values, static.astype(np.float32))


def stays_to_steps(stays: list[StayRows]) -> Steps:
    """The stays' steps, by the one path every irregular source takes
    (:func:`tsmoe.data.observations.rows_to_steps`): rows at one time form a step, and repeated
    measurements of a variable at one time are averaged (PhysioNet's files repeat some)."""
    ids = np.array([stay.record_id for stay in stays], dtype=np.int64)
    entity = np.repeat(np.arange(len(stays)), [len(stay.hours) for stay in stays])
    rows = ObservationRows(
        entity_ids=ids,
        entity=entity,
        time=np.fromiter((h for stay in stays for h in stay.hours), np.float64, len(entity)),
        variable=np.fromiter((v for stay in stays for v in stay.variables), np.int64, len(entity)),
        value=np.fromiter((x for stay in stays for x in stay.values), np.float64, len(entity)),
        variables=VARIABLES,
        where=lambda row: f"stay {ids[entity[row]]}",
    )
    return rows_to_steps(rows, starts=np.zeros(len(stays)), duplicates="mean")  # the clock starts at admission


def parse_stay(
    name: str, text: str, skipped: Counter[str] | None = None, unknown: UnknownPolicy = "error"
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Parse one stay file into ``(record_id, times (T,), values (T, F) with NaN, static (P,))``
    (:func:`stay_rows`, then :func:`stays_to_steps`)."""
    stay = stay_rows(name, text, skipped, unknown)
    steps = stays_to_steps([stay])
    return stay.record_id, steps.times, steps.values, stay.static


def _parse_sets(sets: dict[str, tuple[Path, Path]], label: str, unknown: UnknownPolicy) -> dict[str, np.ndarray]:
    stays: list[StayRows] = []
    labels, set_names = [], []
    skipped_counts = []  # per set: rows skipped for an empty parameter, for an unknown one
    for set_name, (stays_path, outcomes_path) in sets.items():
        outcomes = _parse_outcomes(outcomes_path, label)
        seen = set()
        skipped: Counter[str] = Counter()
        for name, text in _stay_files(stays_path):
            stay = stay_rows(name, text, skipped, unknown)
            if stay.record_id not in outcomes:
                raise DataError(f"file '{name}': RecordID {stay.record_id} has no row in '{outcomes_path}'")
            if stay.record_id in seen:
                raise DataError(f"file '{name}': RecordID {stay.record_id} appears twice in '{stays_path}'")
            seen.add(stay.record_id)
            stays.append(stay)
            labels.append(outcomes[stay.record_id])
            set_names.append(set_name)
        skipped_counts.append([skipped["empty parameter"], skipped["unknown parameter"]])
        missing = sorted(set(outcomes) - seen)
        if missing:
            raise DataError(
                f"'{outcomes_path}' lists {len(missing)} RecordID(s) with no stay file in '{stays_path}', "
                f"e.g. {missing[:5]}"
            )
    if not stays:
        raise DataError(f"no stay files found in {[str(s) for s, _ in sets.values()]}")
    steps = stays_to_steps(stays)
    return {
        "record_ids": np.array([stay.record_id for stay in stays], dtype=np.int64),
        "offsets": steps.offsets,
        "times": steps.times,
        "values": steps.values,
        "static": np.stack([stay.static for stay in stays]).astype(np.float32),
        # the binary outcome stays integer (a class); every other outcome is a float target
        "labels": np.array(labels, dtype=np.int64 if label == LABEL else np.float32),
        "sets": np.array(set_names),
        "skipped_rows": np.array(skipped_counts, dtype=np.int64).reshape(-1, 2),  # (sets, 2), sets in order
    }


def load_physionet2012(
    root: str | Path | None = None,
    sets: list[str] | None = None,
    label: str = LABEL,
    unknown_parameters: UnknownPolicy = "error",
) -> IrregularSet:
    """Load PhysioNet 2012 stays from ``root`` (default: the shipped sets A and B).

    ``sets`` picks set names (``["a", "b"]``); default: every set found in ``root``. ``label`` is the
    outcome column: ``In-hospital_death`` (binary, the default) or a number to regress
    (``Length_of_stay``, ``SAPS-I``, ``SOFA``, ``Survival``; missing ``-1`` becomes NaN). Parsed arrays
    are cached on disk, keyed by the hash of the source files and the label.

    Rows with an empty ``Parameter`` field are skipped, with one warning per set that counts them; the
    counts are kept in the set's ``notes`` (and so in a run's ``meta.json``). ``unknown_parameters="skip"``
    skips rows naming a parameter the set does not have, counted alike (default: such a row is an error).
    """
    root = Path(root) if root is not None else default_root()
    found = find_sets(root)
    if sets is not None:
        unknown = sorted(set(sets) - set(found))
        if unknown:
            raise DataError(f"set(s) {unknown} not found in '{root}'; found {sorted(found)}")
        found = {name: found[name] for name in sets}
    sources = [p for pair in found.values() for p in pair]
    if any(p.is_dir() for p in sources):  # a folder of stays: hash its files
        sources = [f for p in sources for f in (sorted(p.glob("*.txt")) if p.is_dir() else [p])]
    key = hash_files(sources, extra=f"physionet2012:{label}:{unknown_parameters}:" + ",".join(found))
    arrays = cached_arrays("physionet2012", key, lambda: _parse_sets(found, label, unknown_parameters))
    notes = {}
    for set_name, (empty_rows, unknown_rows) in zip(found, arrays["skipped_rows"].tolist(), strict=True):
        for reason, count in (("empty parameter", empty_rows), ("unknown parameter", unknown_rows)):
            if count:
                note(log, "PhysioNet 2012 set %s: skipped %d row(s) with an %s field", set_name, count, reason)
                notes.setdefault("skipped rows", {}).setdefault(f"set {set_name}", {})[reason] = count
    data = IrregularSet(
        record_ids=arrays["record_ids"],
        offsets=arrays["offsets"],
        times=arrays["times"],
        values=arrays["values"],
        static=arrays["static"],
        labels=arrays["labels"],
        variables=VARIABLES,
        static_names=STATIC,
        notes=notes,
    )
    empty = int((data.lengths() == 0).sum())
    if empty:
        log.info(
            "PhysioNet 2012: %d of %d stays have no time-varying measurement; kept with their static "
            "descriptors and one fully masked step",
            empty,
            len(data),
        )
    return data


@dataclass
class PhysioNetParams:
    """``data`` keys for PhysioNet 2012 (protocol P1)."""

    root: str | None = None  # folder with set-<x>/ or set-<x>.tar.gz and Outcomes-<x>.txt; None: shipped
    sets: list[str] | None = None  # e.g. [a, b]; None: every set in root
    label: str = "In-hospital_death"  # or Length_of_stay, SAPS-I, SOFA, Survival (regression)
    split_file: str | None = "shipped"  # JSON of record IDs; "shipped": the committed P1 split; None: make one
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    value_scaling: Scaling = "zscore"  # quantile: each variable through its training
    # CDF and the normal quantile function (robust to heavy-tailed labs; tsmoe.data.irregular)
    unknown_parameters: UnknownPolicy = "error"  # skip: rows naming a parameter the set lacks are skipped,
    # counted and reported (rows with an empty Parameter field are always skipped and counted)
    until: float | None = None  # keep each stay's first `until` hours only (early prediction, P6)
    per_step: bool = False  # train and score at every step, each step's target the stay's outcome (P6)

    def __post_init__(self) -> None:
        check_split_fractions(self.split_fractions)
        if self.until is not None and not self.until > 0:
            raise ValueError(f"until must be a positive number of hours, got {self.until}")


def shipped_split_file() -> Path:
    """The committed P1 split (record IDs of each part, stratified 80/10/10 with seed 0)."""
    return shipped_data_dir() / "physionet2012" / "split-p1-seed0.json"


class PhysioNet2012(IrregularAdapter):
    name = "physionet2012"
    params = PhysioNetParams
    description = "PhysioNet/CinC 2012 ICU stays, sets A and B: 37 irregular variables, 5 static, in-hospital death"
    folder = "physionet2012"

    def load(self, params: PhysioNetParams) -> IrregularSet:
        return load_physionet2012(params.root, params.sets, params.label, params.unknown_parameters)

    def split(self, params: PhysioNetParams) -> IdSplit | None:
        if not params.split_file:
            return None
        return IdSplit.read(shipped_split_file() if params.split_file == "shipped" else Path(params.split_file))
