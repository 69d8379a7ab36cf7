"""Trace loaders: openb node and pod lists -> :mod:`cohabit.model` types, validated.

The openb trace (Alibaba ``cluster-trace-gpu-v2023``, the workload of Weng et al., "Beware of
Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX
ATC 2023) comes as two CSV files per experiment:

* node list: ``sn,cpu_milli,memory_mib,gpu,model`` (``model`` empty for a CPU-only node);
* pod list: ``name,cpu_milli,memory_mib,num_gpu,gpu_milli`` and optionally
  ``gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time`` (the ``multigpuNN``
  lists carry only the first five columns).

Files are read by column name with pandas (column order does not matter, extra columns are
ignored). Every row is validated; all problems are collected and raised together as one
:class:`TraceError` naming the file, the 1-based line (as a text editor shows it, the header
is line 1) and the field. Nothing is silently dropped: a row is either loaded or reported.

The embedded default (package data under ``cohabit/data/alibaba-gpu-2023/``) is reached with
:mod:`importlib.resources`; :func:`resolve_pods` and :func:`resolve_nodes` also accept the
short names of the shipped lists (``default``, ``gpushare40``, ``gpu_node``, ...).
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cohabit.model import MILLI_PER_GPU, GpuDevice, Node, Pod, QosClass, gpu_request_problems

__all__ = [
    "NODE_COLUMNS",
    "POD_COLUMNS",
    "POD_OPTIONAL_COLUMNS",
    "LoadSummary",
    "Problem",
    "Trace",
    "TraceError",
    "default_trace",
    "load_nodes",
    "load_pods",
    "load_trace",
    "packaged_node_lists",
    "packaged_pod_lists",
    "pod_kind",
    "resolve_nodes",
    "resolve_pods",
    "summarize",
]

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
"""Required columns of an openb node list."""

POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
"""Required columns of an openb pod list."""

POD_OPTIONAL_COLUMNS = (
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
"""Optional columns of an openb pod list (absent in the ``multigpuNN`` lists).

Defaults when absent: no GPU model constraint, QoS ``BE``, creation time 0, no deletion.
``--mode replay`` needs ``creation_time`` (see ``require_times`` of :func:`load_pods`).
"""

MAX_LISTED_PROBLEMS = 20
"""How many problems a :class:`TraceError` message lists before summarising the rest."""

MAX_GPUS_PER_NODE = 128
"""Largest ``gpu`` of a node and ``num_gpu`` of a pod the loaders accept.

Servers hold 8 to 16 GPUs today (HGX/DGX); 128 leaves room for aggregated nodes. Without a
bound, a node of 100,000,000 GPUs made the loader build a device object per GPU and the
placement state a row of that width per node, until memory ran out."""

MAX_CPU_MILLI = 10**9
"""Largest ``cpu_milli`` (a million cores) the loaders accept; larger values overflowed the
64-bit capacity sums of the placement state (a node of ``cpu_milli`` 1e30)."""

MAX_MEMORY_MIB = 2**40
"""Largest ``memory_mib`` (one exbibyte) the loaders accept (same reason as
:data:`MAX_CPU_MILLI`)."""

MAX_TIME_S = 1e12
"""Largest ``creation_time``/``deletion_time``/``scheduled_time`` (about 31,700 years, in
seconds). Beyond it a float second is no longer exact to the millisecond, and a replay's
sampling clock (``t += period``) could stop advancing."""

POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
"""Values of ``pod_phase``: the Kubernetes pod phases (the openb trace uses the first four)."""

_DATA_PACKAGE = "cohabit"
_OPENB_DIR = "data/alibaba-gpu-2023"
_POD_PREFIX = "openb_pod_list_"
_NODE_PREFIX = "openb_node_list_"
DEFAULT_POD_LIST = "openb_pod_list_default"
DEFAULT_NODE_LIST = "openb_node_list_gpu_node"

POD_KINDS = ("cpu-only", "sharing", "whole", "multi-GPU")
"""Pod kinds as :func:`pod_kind` names them, in display order."""


# --------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a trace file.

    Attributes:
        line: 1-based line number in the file (header = 1), or ``None`` for the whole file.
        field: column name, or ``None`` when the problem is not about one field.
        message: what is wrong, e.g. ``"'12x' is not a number"``.
    """

    line: int | None
    field: str | None
    message: str

    def describe(self) -> str:
        """``"line 3, field gpu_milli: 1200 is outside 0..1000"`` (parts omitted when None)."""
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field}")
        return (", ".join(where) + ": " if where else "") + self.message


class TraceError(ValueError):
    """A trace file is missing, unreadable or holds bad rows.

    Attributes:
        path: the file (as given, or the packaged file's path).
        problems: every problem found, sorted by line.

    ``str(error)`` starts with one line naming the file, the first problem's line and field
    and how many more there are; the following lines list up to
    :data:`MAX_LISTED_PROBLEMS` problems.
    """

    def __init__(self, path: str | Path, problems: Sequence[Problem]) -> None:
        self.path = str(path)
        self.problems = tuple(
            sorted(problems, key=lambda p: (p.line if p.line is not None else 0, p.field or ""))
        )
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.problems:
            return f"{self.path}: invalid trace"
        first = self.problems[0]
        head = f"{self.path}: {first.describe()}"
        more = len(self.problems) - 1
        if more == 0:
            return head
        lines = [f"{head} (and {more} more problem{'s' if more > 1 else ''})"]
        for p in self.problems[:MAX_LISTED_PROBLEMS]:
            lines.append(f"  {p.describe()}")
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"  ... {len(self.problems) - MAX_LISTED_PROBLEMS} more not listed")
        return "\n".join(lines)

    @property
    def headline(self) -> str:
        """The first line of the message (file, first problem, count of the others)."""
        return str(self).splitlines()[0]


# ------------------------------------------------------------------------------- reading


def _read_table(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """Read a CSV once, as strings; raise :class:`TraceError` for unreadable or malformed files.

    Returns a frame of ``str`` cells (stripped header names; missing cells ``""``) whose
    index is the 1-based line number of each row, as a text editor shows it (the header is
    line 1; a quoted field spanning lines counts its last line). Blank lines are not rows
    and keep the line numbering exact; rows of nothing but separators (``,,,``) are dropped
    like blank lines.

    Field counts are checked per row: empty fields after the header's last column (a
    trailing comma) are ignored; a row with more non-empty fields, or fewer fields, than
    the header is a problem naming its line (pandas would instead shift every field of the
    file one column to the left, taking the first column for an index).
    """
    if not path.is_file():
        raise TraceError(path, [Problem(None, None, "no such file")])
    header, header_line, rows, lines, problems = _csv_rows(path)
    if header is None:
        raise TraceError(path, problems or [Problem(None, None, "file is empty (no header line)")])
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            problems.append(Problem(header_line, name, "column appears twice in the header"))
        seen.add(name)
    missing = [c for c in required if c not in header]
    problems.extend(
        Problem(header_line, c, f"missing column (header has: {', '.join(header)})")
        for c in missing
    )
    if problems:
        raise TraceError(path, problems)
    if not rows:
        raise TraceError(path, [Problem(None, None, "no data rows after the header")])
    return pd.DataFrame(rows, columns=header, index=pd.Index(lines), dtype=object)


def _csv_rows(
    path: Path,
) -> tuple[list[str] | None, int, list[list[str]], list[int], list[Problem]]:
    """``(header, header line, rows cut to the header's width, their lines, problems)``.

    The header is the first non-blank line (``None`` when there is none). Problems: rows
    whose field count differs from the header's (trailing empty fields excepted), lines
    the ``csv`` module cannot parse (NUL byte, unterminated quote, a field over its size
    limit) and a file that is not UTF-8 text.
    """
    header: list[str] | None = None
    header_line = 1
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    width = 0
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, skipinitialspace=True)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line or separators only
                if header is None:
                    header = [cell.strip() for cell in row]
                    header_line, width = reader.line_num, len(row)
                    continue
                if len(row) > width and any(cell.strip() for cell in row[width:]):
                    problems.append(Problem(
                        reader.line_num, None,
                        f"{len(row)} fields where the header has {width}"))
                    continue
                if len(row) < width:
                    problems.append(Problem(
                        reader.line_num, None,
                        f"{len(row)} fields where the header has {width}"))
                    continue
                rows.append(row[:width])
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        problems.append(Problem(None, None, f"not a UTF-8 text file ({exc.reason})"))
    except csv.Error as exc:
        line = reader.line_num if reader is not None else None
        problems.append(Problem(line, None, f"cannot parse CSV: {exc}"))
    return header, header_line, rows, lines, problems


def _numbers(
    df: pd.DataFrame,
    col: str,
    problems: list[Problem],
    *,
    integer: bool = True,
    allow_empty: bool = False,
    hi: float | None = None,
) -> pd.Series:
    """Column ``col`` as numbers; records bad cells.

    Checks: not empty (unless ``allow_empty``), numeric, finite, >= 0, a whole number when
    ``integer``, <= ``hi`` when given. Bad cells are recorded in ``problems`` and become NaN,
    like allowed empty cells, so that checks across fields (which compare numbers, never
    the raw text) skip them instead of reporting the same cell twice.
    """
    raw = df[col].astype(str).str.strip()
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    empty = raw == ""
    for line in df.index[empty & ~allow_empty]:
        problems.append(Problem(int(line), col, "empty value"))
    nonnum = num.isna() & ~empty
    for line in df.index[nonnum]:
        problems.append(Problem(int(line), col, f"{raw[line]!r} is not a number"))
    bad = num.notna() & ~np.isfinite(num)
    for line in df.index[bad]:
        problems.append(Problem(int(line), col, f"{raw[line]!r} is not a finite number"))
    vals = num[num.notna() & ~bad]
    neg = vals < 0
    for line in vals.index[neg]:
        problems.append(Problem(int(line), col, f"{raw[line]} is negative"))
    frac = (vals != np.floor(vals)) if integer else pd.Series(False, index=vals.index)
    for line in vals.index[frac & ~neg]:
        problems.append(Problem(int(line), col, f"{raw[line]} is not a whole number"))
    high = (vals > hi) if hi is not None else pd.Series(False, index=vals.index)
    for line in vals.index[high]:
        problems.append(Problem(int(line), col, f"{raw[line]} is outside 0..{_bound(hi)}"))
    good = vals.index[~(neg | frac | high)]
    return num.where(num.index.isin(good))


def _bound(hi: float | None) -> str:
    """``1000`` for a whole bound, else ``1e+12`` style."""
    if hi is None:
        return ""
    return str(int(hi)) if float(hi).is_integer() and abs(hi) < 1e15 else f"{hi:g}"


def _names(df: pd.DataFrame, col: str, problems: list[Problem]) -> pd.Series:
    """Column ``col`` stripped; records empty and duplicate names (each repeat, with the
    line of its first occurrence)."""
    names = df[col].str.strip()
    for line in df.index[names == ""]:
        problems.append(Problem(int(line), col, "empty name"))
    dup = names.duplicated(keep="first") & (names != "")
    if dup.any():
        first_line = {n: int(ln) for ln, n in names[~names.duplicated()].items()}
        for line in df.index[dup]:
            n = names[line]
            problems.append(
                Problem(int(line), col, f"duplicate name {n!r} (first on line {first_line[n]})")
            )
    return names


# --------------------------------------------------------------------------------- nodes


def load_nodes(path: str | Path) -> list[Node]:
    """Load an openb node list.

    Args:
        path: CSV with columns :data:`NODE_COLUMNS` (read by name; extra columns ignored).

    Returns:
        One :class:`~cohabit.model.Node` per row, in file order, fully free
        (``cpu_free_milli = cpu_milli``), with ``gpu`` devices
        ``GpuDevice(index=i, model=model)`` for ``i`` in ``0..gpu-1``.

    Raises:
        TraceError: missing file or column, unparseable file, no rows, empty/duplicate
            ``sn``, a count that is empty, non-numeric, negative or fractional or above its
            bound (:data:`MAX_CPU_MILLI`, :data:`MAX_MEMORY_MIB`,
            :data:`MAX_GPUS_PER_NODE`), a node with GPUs but no ``model``, or a ``model``
            on a node without GPUs. All bad rows are reported in one error.
    """
    path = Path(path)
    df = _read_table(path, NODE_COLUMNS)
    problems: list[Problem] = []
    names = _names(df, "sn", problems)
    cpu = _numbers(df, "cpu_milli", problems, hi=MAX_CPU_MILLI)
    mem = _numbers(df, "memory_mib", problems, hi=MAX_MEMORY_MIB)
    gpu = _numbers(df, "gpu", problems, hi=MAX_GPUS_PER_NODE)
    model = df["model"].str.strip()
    for line in df.index[(gpu > 0) & (model == "")]:
        problems.append(Problem(int(line), "model", f"empty for a node with {int(gpu[line])} GPUs"))
    for line in df.index[(gpu == 0) & (model != "")]:
        problems.append(
            Problem(int(line), "model", f"{model[line]!r} given for a node with 0 GPUs")
        )
    if problems:
        raise TraceError(path, problems)
    nodes = []
    for name, c, m, g, mdl in zip(names, cpu, mem, gpu, model, strict=True):
        c, m = int(c), int(m)
        nodes.append(
            Node(
                name=name,
                cpu_milli=c,
                memory_mib=m,
                cpu_free_milli=c,
                memory_free_mib=m,
                gpus=tuple(GpuDevice(index=i, model=mdl) for i in range(int(g))),
            )
        )
    return nodes


# ---------------------------------------------------------------------------------- pods

_QOS_BY_TEXT = {q.value: q for q in QosClass}


def load_pods(path: str | Path, nodes: Sequence[Node], *, require_times: bool = False) -> list[Pod]:
    """Load an openb pod list and check it against the cluster's GPU models.

    Args:
        path: CSV with columns :data:`POD_COLUMNS` and optionally
            :data:`POD_OPTIONAL_COLUMNS` (read by name; extra columns ignored).
        nodes: the cluster (from :func:`load_nodes`); every model named in ``gpu_spec``
            must be the model of some node's GPUs.
        require_times: when True (``--mode replay``), ``creation_time`` must be present.

    Returns:
        One :class:`~cohabit.model.Pod` per row, in file order: requests in millicores,
        MiB and milli-GPU per GPU; ``gpu_spec`` split on ``|`` into a frozenset (empty =
        any model); ``qos`` as :class:`~cohabit.model.QosClass` (``BE`` when the column is
        absent); ``creation_time``/``deletion_time`` in seconds (``deletion_time`` None
        when empty or absent). ``pod_phase`` and ``scheduled_time`` are validated but not
        kept (the experiments schedule every pod themselves).

    Raises:
        TraceError: missing file or column, unparseable file, no rows, empty/duplicate
            ``name``; a request that is empty, non-numeric, negative, fractional or above
            its bound (:data:`MAX_CPU_MILLI`, :data:`MAX_MEMORY_MIB`,
            :data:`MAX_GPUS_PER_NODE`); ``gpu_milli`` outside 0..1000; ``num_gpu > 1``
            with a partial share (``gpu_milli != 1000``); ``num_gpu >= 1`` with
            ``gpu_milli == 0`` or ``num_gpu == 0`` with ``gpu_milli > 0`` (compared as
            numbers: ``0.0`` is 0); a ``gpu_spec`` model no node has; an unknown ``qos``
            or ``pod_phase`` (:data:`POD_PHASES`); a bad time (above :data:`MAX_TIME_S`
            too) or ``deletion_time < creation_time``. All bad rows are reported in one
            error.
    """
    return _load_pod_table(Path(path), nodes, require_times=require_times)[0]


def _load_pod_table(
    path: Path, nodes: Sequence[Node], *, require_times: bool
) -> tuple[list[Pod], list[str]]:
    """:func:`load_pods` and, per pod, the stripped ``gpu_spec`` text of its row ('' when
    the column is absent): one read of the file for both."""
    df = _read_table(path, POD_COLUMNS)
    problems: list[Problem] = []
    if require_times and "creation_time" not in df.columns:
        problems.append(Problem(1, "creation_time", "missing column (needed by --mode replay)"))
    names = _names(df, "name", problems)
    requests = _pod_requests(df, problems)
    spec_text = (
        df["gpu_spec"].str.strip() if "gpu_spec" in df.columns
        else pd.Series("", index=df.index)
    )
    specs = _gpu_specs(spec_text, nodes, problems)
    qos = _qos_classes(df, problems)
    _check_phases(df, problems)
    created, deleted = _times(df, problems)
    if problems:
        raise TraceError(path, problems)
    cpu, mem, num_gpu, gpu_milli = requests
    pods = [
        Pod(
            name=name,
            cpu_milli=int(c),
            memory_mib=int(m),
            num_gpu=int(ng),
            gpu_milli=int(gm),
            gpu_spec=spec,
            qos=q,
            creation_time=float(t0),
            deletion_time=None if math.isnan(t1) else float(t1),
        )
        for name, c, m, ng, gm, spec, q, t0, t1 in zip(
            names, cpu, mem, num_gpu, gpu_milli, specs, qos, created, deleted, strict=True
        )
    ]
    return pods, spec_text.tolist()


def _pod_requests(
    df: pd.DataFrame, problems: list[Problem]
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """``cpu_milli, memory_mib, num_gpu, gpu_milli`` as numbers, each checked alone and the
    GPU pair checked together (on the parsed numbers, so ``0.0`` counts as 0)."""
    cpu = _numbers(df, "cpu_milli", problems, hi=MAX_CPU_MILLI)
    mem = _numbers(df, "memory_mib", problems, hi=MAX_MEMORY_MIB)
    num_gpu = _numbers(df, "num_gpu", problems, hi=MAX_GPUS_PER_NODE)
    gpu_milli = _numbers(df, "gpu_milli", problems, hi=MILLI_PER_GPU)
    both = num_gpu.notna() & gpu_milli.notna()
    for line, ng, gm in zip(df.index[both], num_gpu[both], gpu_milli[both], strict=True):
        for field_name, what in gpu_request_problems(int(ng), int(gm)):
            problems.append(Problem(int(line), field_name, what))
    return cpu, mem, num_gpu, gpu_milli


def _gpu_specs(
    spec_text: pd.Series, nodes: Sequence[Node], problems: list[Problem]
) -> list[frozenset[str]]:
    """``gpu_spec`` text -> sets of models; every model must be on some node's GPUs."""
    known_models = sorted({g.model for n in nodes for g in n.gpus})
    specs: list[frozenset[str]] = []
    spec_cache: dict[str, frozenset[str]] = {}
    for line, text in spec_text.items():
        spec = spec_cache.get(text)
        if spec is None:
            parts = [p.strip() for p in text.split("|")] if text else []
            if any(p == "" for p in parts):
                problems.append(Problem(int(line), "gpu_spec", f"{text!r} has an empty model"))
            spec = frozenset(p for p in parts if p)
            unknown = sorted(spec.difference(known_models))
            if unknown:
                problems.append(
                    Problem(
                        int(line),
                        "gpu_spec",
                        f"model {', '.join(unknown)} is on no node "
                        f"(cluster has: {', '.join(known_models) or 'no GPUs'})",
                    )
                )
            else:
                spec_cache[text] = spec
        specs.append(spec)
    return specs


def _qos_classes(df: pd.DataFrame, problems: list[Problem]) -> list[QosClass]:
    """``qos`` as :class:`~cohabit.model.QosClass` (``BE`` when the column is absent)."""
    if "qos" not in df.columns:
        return [QosClass.BE] * len(df)
    qos_text = df["qos"].str.strip()
    allowed = ", ".join(_QOS_BY_TEXT)
    for line in df.index[~qos_text.isin(list(_QOS_BY_TEXT))]:
        problems.append(Problem(int(line), "qos", f"{qos_text[line]!r} is not one of {allowed}"))
    return [_QOS_BY_TEXT.get(t, QosClass.BE) for t in qos_text]


def _check_phases(df: pd.DataFrame, problems: list[Problem]) -> None:
    """``pod_phase``, when the column is there, is one of :data:`POD_PHASES`."""
    if "pod_phase" not in df.columns:
        return
    phase = df["pod_phase"].str.strip()
    allowed = ", ".join(POD_PHASES)
    for line in df.index[~phase.isin(POD_PHASES)]:
        problems.append(
            Problem(int(line), "pod_phase", f"{phase[line]!r} is not one of {allowed}")
        )


def _times(df: pd.DataFrame, problems: list[Problem]) -> tuple[pd.Series, pd.Series]:
    """``creation_time`` (0 when absent) and ``deletion_time`` (NaN when empty or absent),
    seconds; ``scheduled_time`` is checked and dropped."""
    if "creation_time" in df.columns:
        created = _numbers(df, "creation_time", problems, integer=False, hi=MAX_TIME_S)
    else:
        created = pd.Series(0.0, index=df.index)
    if "deletion_time" in df.columns:
        deleted = _numbers(
            df, "deletion_time", problems, integer=False, allow_empty=True, hi=MAX_TIME_S
        )
        for line in df.index[deleted.notna() & (deleted < created)]:
            problems.append(
                Problem(
                    int(line),
                    "deletion_time",
                    f"{deleted[line]:g} is before creation_time {created[line]:g}",
                )
            )
    else:
        deleted = pd.Series(np.nan, index=df.index)
    if "scheduled_time" in df.columns:
        _numbers(df, "scheduled_time", problems, integer=False, allow_empty=True, hi=MAX_TIME_S)
    return created, deleted


# ---------------------------------------------------------------------- packaged traces


def _packaged_names(prefix: str) -> list[str]:
    folder = resources.files(_DATA_PACKAGE).joinpath(_OPENB_DIR)
    return sorted(
        p.name[: -len(".csv")]
        for p in folder.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(".csv")
    )


def packaged_pod_lists() -> list[str]:
    """Stems of the shipped pod lists, e.g. ``["openb_pod_list_cpu0", ...]``."""
    return _packaged_names(_POD_PREFIX)


def packaged_node_lists() -> list[str]:
    """Stems of the shipped node lists: ``openb_node_list_all_node``, ``..._gpu_node``."""
    return _packaged_names(_NODE_PREFIX)


@contextlib.contextmanager
def _packaged_file(stem: str) -> Iterator[Path]:
    ref = resources.files(_DATA_PACKAGE).joinpath(_OPENB_DIR).joinpath(f"{stem}.csv")
    with resources.as_file(ref) as p:
        yield Path(p)


def _resolve(spec: str | Path, prefix: str, packaged: list[str], what: str) -> tuple[str, str]:
    """(kind, value): ``("file", path)`` or ``("packaged", stem)``; TraceError otherwise."""
    text = str(spec).strip()
    p = Path(text).expanduser()
    if p.is_file():
        return "file", str(p)
    stem = text[: -len(".csv")] if text.endswith(".csv") else text
    for candidate in (stem, prefix + stem):
        if candidate in packaged:
            return "packaged", candidate
    short = ", ".join(s[len(prefix) :] for s in packaged)
    raise TraceError(
        text,
        [Problem(None, None, f"no such file, and not a shipped {what} (shipped: {short})")],
    )


def resolve_pods(spec: str | Path) -> tuple[str, str]:
    """Resolve ``--pods``: a CSV path, or a shipped list's name (``default``,
    ``gpushare40``, ``openb_pod_list_gpushare40``, ``..._gpushare40.csv``).

    Returns:
        ``("file", path)`` or ``("packaged", stem)``.

    Raises:
        TraceError: neither an existing file nor a shipped name (lists the shipped names).
    """
    return _resolve(spec, _POD_PREFIX, packaged_pod_lists(), "pod list")


def resolve_nodes(spec: str | Path) -> tuple[str, str]:
    """Resolve ``--nodes``: a CSV path, or ``gpu_node`` / ``all_node`` (shipped lists).

    Returns and raises as :func:`resolve_pods`.
    """
    return _resolve(spec, _NODE_PREFIX, packaged_node_lists(), "node list")


@dataclass(frozen=True)
class Trace:
    """A cluster and a pod list, ready for the experiment loops.

    Attributes:
        workload: name of the pod list (file stem, e.g. ``openb_pod_list_default``); the
            published FGD curves are keyed by it.
        nodes, pods: as loaded.
        nodes_source, pods_source: where they came from (path, or ``packaged:<stem>``).
        has_times: the pod list has ``creation_time`` (replay is meaningful).
        gpu_spec_text: the ``gpu_spec`` text of each pod's row (stripped), in ``pods``
            order ('' when the column is absent). The FGD paper's simulator groups typical
            pods by this text (``V100M16|V100M32`` and ``V100M16|V100M32|V100M32`` are two
            groups), while :class:`~cohabit.model.Pod` keeps only the set of models.
    """

    workload: str
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    nodes_source: str
    pods_source: str
    has_times: bool = True
    gpu_spec_text: tuple[str, ...] = ()


def _load_nodes_spec(spec: str | Path) -> tuple[list[Node], str]:
    kind, value = resolve_nodes(spec)
    if kind == "file":
        return load_nodes(value), value
    with _packaged_file(value) as p:
        return load_nodes(p), f"packaged:{value}"


def raw_gpu_spec_text(path: str | Path) -> list[str]:
    """The stripped ``gpu_spec`` text of each data row of an openb pod list ('' when absent).

    The FGD paper's simulator keys typical pods on this text (``GetTypicalPods`` in
    hkust-adsl/kubernetes-scheduler-simulator ``pkg/utils``), so ``V100M16|V100M32`` and
    ``V100M16|V100M32|V100M32`` are two groups; :class:`~cohabit.model.Pod` keeps only the
    set of models. On gpuspec25 this moves fgd by up to 0.37 points. The file is read by
    the loader's own reader (header names stripped, blank and separator-only rows skipped),
    so the list has one entry per pod :func:`load_pods` returns.

    Raises:
        TraceError: the file cannot be read as a table (see :func:`load_pods`).
    """
    df = _read_table(Path(path), ())
    if "gpu_spec" not in df.columns:
        return [""] * len(df)
    return df["gpu_spec"].str.strip().tolist()


def _has_column(path: Path, column: str) -> bool:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        for row in csv.reader(fh, skipinitialspace=True):
            if any(cell.strip() for cell in row):
                return column in [c.strip() for c in row]
    return False


def load_trace(
    pods: str | Path | None = None,
    nodes: str | Path | None = None,
    *,
    require_times: bool = False,
) -> Trace:
    """Load a cluster and a pod list, each from a path or a shipped name.

    Args:
        pods: ``--pods`` (default: the shipped ``openb_pod_list_default``).
        nodes: ``--nodes`` (default: the shipped ``openb_node_list_gpu_node``, 1,213 GPU
            nodes with 6,212 GPUs).
        require_times: passed to :func:`load_pods`.

    Raises:
        TraceError: see :func:`resolve_pods`, :func:`load_nodes`, :func:`load_pods`.
    """
    node_list, nodes_source = _load_nodes_spec(nodes if nodes is not None else DEFAULT_NODE_LIST)
    kind, value = resolve_pods(pods if pods is not None else DEFAULT_POD_LIST)
    if kind == "file":
        path = Path(value)
        pod_list, spec_text = _load_pod_table(path, node_list, require_times=require_times)
        return Trace(
            path.stem,
            tuple(node_list),
            tuple(pod_list),
            nodes_source,
            str(path),
            _has_column(path, "creation_time"),
            tuple(spec_text),
        )
    with _packaged_file(value) as p:
        pod_list, spec_text = _load_pod_table(p, node_list, require_times=require_times)
        has_times = _has_column(p, "creation_time")
    return Trace(
        value,
        tuple(node_list),
        tuple(pod_list),
        nodes_source,
        f"packaged:{value}",
        has_times,
        tuple(spec_text),
    )


def default_trace() -> Trace:
    """The embedded default: shipped GPU node list + default pod list (8,152 pods)."""
    return load_trace()


# ------------------------------------------------------------------------------- summary


def pod_kind(pod: Pod) -> str:
    """``"cpu-only"`` (no GPU), ``"sharing"`` (one GPU, share < 1000), ``"whole"`` (one
    whole GPU) or ``"multi-GPU"`` (``num_gpu > 1``, whole GPUs)."""
    if pod.num_gpu == 0:
        return "cpu-only"
    if pod.num_gpu > 1:
        return "multi-GPU"
    return "sharing" if pod.gpu_milli < MILLI_PER_GPU else "whole"


@dataclass(frozen=True)
class LoadSummary:
    """What a trace holds, for printing after loading.

    Attributes:
        nodes: node count; ``cpu_only_nodes`` of them have no GPU.
        gpus: GPU count; ``gpus_by_model`` per model (sorted by model name).
        cpu_milli, memory_mib: cluster capacity.
        pods: pod count; ``pods_by_kind`` (keys :data:`POD_KINDS`), ``pods_by_qos``.
        gpu_request_milli: total GPU request of the pod list (milli-GPU).
        pods_with_gpu_spec: pods restricted to some GPU models.
    """

    nodes: int
    cpu_only_nodes: int
    gpus: int
    gpus_by_model: dict[str, int]
    cpu_milli: int
    memory_mib: int
    pods: int
    pods_by_kind: dict[str, int]
    pods_by_qos: dict[str, int]
    gpu_request_milli: int
    pods_with_gpu_spec: int

    def lines(self) -> list[str]:
        """Human-readable lines (no markup)."""
        models = ", ".join(f"{m} {n}" for m, n in self.gpus_by_model.items()) or "none"
        kinds = ", ".join(f"{k} {self.pods_by_kind.get(k, 0)}" for k in POD_KINDS)
        qos = ", ".join(f"{k} {v}" for k, v in self.pods_by_qos.items())
        cap = self.gpus * MILLI_PER_GPU
        share = f" = {100 * self.gpu_request_milli / cap:.1f}% of GPU capacity" if cap else ""
        return [
            f"nodes: {self.nodes} ({self.cpu_only_nodes} CPU-only), "
            f"{self.cpu_milli / 1000:,.0f} cores, {self.memory_mib / 1024:,.0f} GiB",
            f"GPUs: {self.gpus} ({models})",
            f"pods: {self.pods} ({kinds}); with gpu_spec {self.pods_with_gpu_spec}",
            f"QoS: {qos}",
            f"GPU request: {self.gpu_request_milli / MILLI_PER_GPU:,.1f} GPUs{share}",
        ]


def summarize(nodes: Sequence[Node], pods: Sequence[Pod]) -> LoadSummary:
    """Count what was loaded (see :class:`LoadSummary`)."""
    by_model = Counter(g.model for n in nodes for g in n.gpus)
    kinds = Counter(pod_kind(p) for p in pods)
    qos = Counter(p.qos.value for p in pods)
    return LoadSummary(
        nodes=len(nodes),
        cpu_only_nodes=sum(1 for n in nodes if not n.gpus),
        gpus=sum(by_model.values()),
        gpus_by_model=dict(sorted(by_model.items())),
        cpu_milli=sum(n.cpu_milli for n in nodes),
        memory_mib=sum(n.memory_mib for n in nodes),
        pods=len(pods),
        pods_by_kind={k: kinds.get(k, 0) for k in POD_KINDS},
        pods_by_qos=dict(qos.most_common()),
        gpu_request_milli=sum(p.gpu_request_milli for p in pods),
        pods_with_gpu_spec=sum(1 for p in pods if p.gpu_spec),
    )
