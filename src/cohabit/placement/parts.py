"""Score parts: the reusable pieces the placement policies add up.

Every part is a function of the :class:`~cohabit.placement.state.ClusterState` and the pod's
request, documented with its unit and source. The ``cohabit`` policy
(:func:`cohabit.placement.policies.score_cohabit`) is their weighted sum, with the weights of
:class:`cohabit.config.placement.ScoreWeights`:

=====================  ==================================================  =================
part                   value                                               source
=====================  ==================================================  =================
fragmentation          FGD's ``int(100 * sigmoid((frag_before -             Weng et al.,
                       frag_after) / 1000))``, 0..100 (:func:`fgd_gpu_      ATC'23
                       scores`, :func:`fgd_node_score`)
look-ahead             look-ahead fragment avoided, GPUs                    cohabit
                       (:func:`lookahead_gains`,
                       :mod:`cohabit.placement.lookahead`)
interference           predicted slowdown suffered + inflicted, x100        Bubble-Up, Paragon,
                       (:meth:`~cohabit.placement.interference.              URSA
                       Interference.penalty`), LS victims x ``ls_
                       protection``
correlation, peak fit  utilisation correlation with GPU neighbours, and    Kube-Knots
                       predicted peak overflow of the GPU                   (CLUSTER'19)
                       (:mod:`cohabit.placement.usage`)
=====================  ==================================================  =================

The first two depend only on the node's *fragmentation state* (model, free CPU, sorted free
GPU milli) and the pod's shape, so they are memoised per (state id, shape); the others
depend on which pods sit on the node and are added only on nodes that hold pods with
profiles or usage data.
"""

from __future__ import annotations

import math

import numpy as np

from cohabit.config.placement import ScoreWeights
from cohabit.model import MILLI_PER_GPU
from cohabit.placement.frag import FragModel, TypicalPods
from cohabit.placement.lookahead import LookAheadFrag
from cohabit.placement.state import ClusterState, PodReq

__all__ = [
    "after_exclusive",
    "fgd_gpu_scores",
    "fgd_node_score",
    "fgd_scores",
    "lookahead_bound",
    "frag_model",
    "lookahead_gains",
    "lookahead_model",
    "sigmoid_score",
    "static_exact",
    "static_gpu_scores",
    "static_scores",
    "weights_of",
]

MAX_NODE_SCORE = 100
StateKey = tuple[int, int, tuple[int, ...]]


def weights_of(state: ClusterState) -> ScoreWeights:
    """The state's :class:`ScoreWeights` (the defaults when none were set)."""
    w = state.weights
    return w if w is not None else _DEFAULT_WEIGHTS


_DEFAULT_WEIGHTS = ScoreWeights()


# --------------------------------------------------------------------- fragmentation (FGD)


def frag_model(state: ClusterState) -> FragModel:
    """The memoised :class:`FragModel` of ``state`` (built on first use).

    Raises:
        ValueError: the state has no typical-pod distribution (see
            :meth:`ClusterState.set_typical`).
    """
    fm = state.caches.get("frag")
    if fm is None:
        fm = FragModel(_need_typical(state), state.model_names)
        state.caches["frag"] = fm
    return fm


def _need_typical(state: ClusterState) -> TypicalPods:
    """``state.typical``; raises ValueError (saying how to set it) when it is None."""
    if state.typical is None:
        raise ValueError(
            "fragmentation needs a typical-pod distribution: "
            "ClusterState.from_nodes(..., typical=typical_pods(workload))"
        )
    return state.typical


def sigmoid_score(before: float, after: float) -> int:
    """FGD's node score ``int(100 * sigmoid((before - after) / 1000))`` (``fgd_score.go``)."""
    x = (before - after) / 1000.0
    return int(1.0 / (1.0 + math.exp(-x)) * float(MAX_NODE_SCORE))


def after_exclusive(key: StateKey, req: PodReq) -> StateKey:
    """``NodeResource.Sub``: CPU minus the pod's, then ``milli`` off the ``num`` GPUs with
    the least free that fit (ascending). An impossible pod leaves the state unchanged."""
    model, cpu, gpus = key
    if cpu < req.cpu_score or len(gpus) < req.num:
        return key
    if req.num == 0:
        return (model, cpu - req.cpu_score, gpus)
    out = list(gpus)  # already ascending
    need = req.num
    for i, g in enumerate(out):
        if need == 0:
            break
        if g >= req.milli:
            out[i] = g - req.milli
            need -= 1
    return (model, cpu - req.cpu_score, tuple(sorted(out)))


def fgd_gpu_scores(state: ClusterState, sid: int, req: PodReq) -> dict[int, int]:
    """FGD score of a sharing pod on each GPU of a node in state ``sid``, keyed by the GPU's
    free milli (GPUs with the same free milli score the same; only GPUs that fit appear).

    The one place FGD's share-GPU scoring is written (``calculateGpuShareFragExtendScore``):
    the node score is the best of these, FGD's GPU choice the first GPU reaching it.
    Memoised per (state, pod shape).
    """
    memo: dict = state.caches.setdefault("fgd_gpu", {})
    k = (sid, req.shape)
    out = memo.get(k)
    if out is None:
        fm = frag_model(state)
        key = state.state_keys[sid]
        model, cpu, gpus = key
        before = fm.frag(key)
        out = {}
        for j, g in enumerate(gpus):
            if g < req.milli or g in out:
                continue
            new = list(gpus)
            new[j] = g - req.milli
            out[g] = sigmoid_score(before,
                                   fm.frag((model, cpu - req.cpu_score, tuple(sorted(new)))))
        memo[k] = out
    return out


def fgd_node_score(state: ClusterState, sid: int, req: PodReq) -> int:
    """FGD score of one node state for ``req``: for a sharing pod the best over the GPUs that
    fit (:func:`fgd_gpu_scores`), else the exclusive placement; -1 when nothing fits."""
    if req.is_share:
        return max(fgd_gpu_scores(state, sid, req).values(), default=-1)
    fm = frag_model(state)
    key = state.state_keys[sid]
    return sigmoid_score(fm.frag(key), fm.frag(after_exclusive(key, req)))


# --------------------------------------------------------------------- look-ahead


def lookahead_model(state: ClusterState) -> LookAheadFrag:
    """The memoised :class:`~cohabit.placement.lookahead.LookAheadFrag` of ``state``: the
    state's pod shapes (:attr:`ClusterState.shapes`, else its typical pods) covering
    :attr:`ScoreWeights.lookahead_coverage`, weighted as
    :attr:`ScoreWeights.lookahead_weighting`.

    Raises:
        ValueError: the state has no typical-pod distribution.
    """
    la = state.caches.get("lookahead")
    if la is None:
        typical = _need_typical(state)
        w = weights_of(state)
        shapes = state.shapes if state.shapes is not None else typical
        if w.lookahead_coverage < shapes.coverage * 100:
            shapes = shapes.covering(w.lookahead_coverage)
        la = LookAheadFrag(shapes, state.model_names, w.lookahead_weighting)
        state.caches["lookahead"] = la
    return la


def lookahead_gains(state: ClusterState, req: PodReq, sids: list[int]
                    ) -> np.ndarray | list[dict[int, float]]:
    """Look-ahead fragment avoided (milli) by placing ``req`` on nodes in states ``sids``:
    ``float[len(sids)]`` for a CPU-only or whole/multi-GPU pod
    (:func:`lookahead_gains_exclusive`); for a sharing pod one dict per state, the gain on
    each fitting GPU keyed by the GPU's free milli (:func:`lookahead_gains_share`)."""
    if req.is_share:
        return lookahead_gains_share(state, req, sids)
    return lookahead_gains_exclusive(state, req, sids)


def lookahead_gains_exclusive(state: ClusterState, req: PodReq, sids: list[int]
                              ) -> np.ndarray:
    """:func:`lookahead_gains` of a CPU-only or whole/multi-GPU pod: ``float[len(sids)]``."""
    keys = [state.state_keys[s] for s in sids]
    q = weights_of(state).lookahead_quantum
    out = lookahead_model(state).gain_exclusive(keys, req.cpu_score, req.num)
    return np.round(out / q) * q if q > 0 else out


def lookahead_gains_share(state: ClusterState, req: PodReq, sids: list[int]
                          ) -> list[dict[int, float]]:
    """:func:`lookahead_gains` of a sharing pod: per state, GPU free milli -> gain."""
    keys = [state.state_keys[s] for s in sids]
    q = weights_of(state).lookahead_quantum
    gains = lookahead_model(state).gain_share(keys, req.cpu_score, req.milli)
    if q > 0:
        gains = [{g: round(v / q) * q for g, v in d.items()} for d in gains]
    return gains


# --------------------------------------------------------------------- static combination


def fgd_scores(state: ClusterState, req: PodReq, feasible: np.ndarray) -> np.ndarray:
    """FGD's score (``int64``) of each feasible node (:func:`fgd_node_score`), memoised per
    (node state, pod shape): only nodes whose state is new for this shape are computed."""
    tab = _shape_table(state, "fgd", req.shape, -1, np.int64)
    sids = state.state_id[feasible]
    sc = tab[sids]
    miss = sc < 0
    if miss.any():
        for sid in np.unique(sids[miss]).tolist():
            tab[sid] = fgd_node_score(state, sid, req)
        sc = tab[sids]
    return sc


def _shape_table(state: ClusterState, cache: str, shape: tuple, fill: float,
                 dtype: type) -> np.ndarray:
    """The memo table ``state.caches[cache][shape]``: one value per state id, ``fill`` where
    not computed yet; grown (to twice the state count, at least 64) when new states appeared."""
    tables: dict = state.caches.setdefault(cache, {})
    n_states = len(state.state_keys)
    tab = tables.get(shape)
    if tab is None or tab.size < n_states:
        new: np.ndarray = np.full(max(2 * n_states, 64), fill, dtype)
        if tab is not None:
            new[: tab.size] = tab
        tab = new
        tables[shape] = tab
    return tab


def lookahead_bound(state: ClusterState) -> float:
    """Largest value the look-ahead term can take on any node (points): every node's
    fragment is at most its GPU milli (the typical-pod weights sum to 1), plus half a
    rounding quantum."""
    w = weights_of(state)
    width = int(state.gpu_free.shape[1]) if state.gpu_free.size else 0
    return w.lookahead * (width * MILLI_PER_GPU + w.lookahead_quantum / 2) / MILLI_PER_GPU


def static_scores(state: ClusterState, req: PodReq, feasible: np.ndarray) -> np.ndarray:
    """``fragmentation * FGD + lookahead * look-ahead gain / 1000`` of each feasible node
    (for a sharing pod: the best GPU of the node).

    The look-ahead part is only computed on the nodes it can lift to the top: those whose
    FGD part is within twice :func:`lookahead_bound` of the best (the others keep their FGD
    part; none of them can be chosen). Exact values are memoised per (state id, pod shape).
    With ``lookahead == 0`` and ``fragmentation == 1`` this is FGD's score exactly.
    """
    w = weights_of(state)
    out = w.fragmentation * fgd_scores(state, req, feasible).astype(np.float64)
    if not w.lookahead or feasible.size == 0:
        return out
    near = np.flatnonzero(out >= out.max() - 2.0 * lookahead_bound(state))
    out[near] = static_exact(state, req, feasible[near])
    return out


def static_exact(state: ClusterState, req: PodReq, nodes: np.ndarray) -> np.ndarray:
    """Fragmentation + look-ahead of ``nodes`` (all parts computed), memoised per (state
    id, pod shape)."""
    w = weights_of(state)
    tab = _shape_table(state, "static", req.shape, np.nan, np.float64)
    sids = state.state_id[nodes]
    sc = tab[sids]
    miss = np.isnan(sc)
    if miss.any():
        todo = np.unique(sids[miss]).tolist()
        tab[todo] = _static_batch(state, req, todo, w)
        sc = tab[sids]
    return sc


def _static_batch(state: ClusterState, req: PodReq, sids: list[int],
                  w: ScoreWeights) -> np.ndarray:
    if req.is_share:
        per_gpu = _static_share(state, req, sids, w)
        return np.array([max(d.values(), default=-1.0) for d in per_gpu])
    base = np.array([fgd_node_score(state, sid, req) for sid in sids], np.float64)
    out = w.fragmentation * base
    if w.lookahead:
        out = out + w.lookahead * lookahead_gains_exclusive(state, req, sids) / MILLI_PER_GPU
    return out


def _static_share(state: ClusterState, req: PodReq, sids: list[int],
                  w: ScoreWeights) -> list[dict[int, float]]:
    """Per state, the static score of each fitting GPU keyed by its free milli; memoised
    per (state, shape)."""
    memo: dict = state.caches.setdefault("static_gpu", {})
    out: list[dict[int, float] | None] = [memo.get((sid, req.shape)) for sid in sids]
    todo = [i for i, d in enumerate(out) if d is None]
    if todo:
        todo_sids = [sids[i] for i in todo]
        gains = lookahead_gains_share(state, req, todo_sids) if w.lookahead else None
        for n, i in enumerate(todo):
            fgd = fgd_gpu_scores(state, sids[i], req)
            d = {g: w.fragmentation * s for g, s in fgd.items()}
            if gains is not None:
                for g, v in gains[n].items():
                    d[g] += w.lookahead * v / MILLI_PER_GPU
            memo[(sids[i], req.shape)] = d
            out[i] = d
    return [d for d in out if d is not None]  # every entry is filled by now


def static_gpu_scores(state: ClusterState, node: int, req: PodReq) -> dict[int, float]:
    """The static score (fragmentation + look-ahead) of a sharing pod on each fitting GPU of
    ``node``, keyed by the GPU's free milli."""
    return _static_share(state, req, [int(state.state_id[node])], weights_of(state))[0]
