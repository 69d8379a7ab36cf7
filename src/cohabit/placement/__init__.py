"""cohabit.placement: filter -> score -> pick over nodes, and the GPU choice inside a node.

Public API:

* :data:`POLICIES`: the score plugins by name (``random``, ``dot-product``,
  ``gpu-clustering``, ``gpu-packing``, ``best-fit``, ``fgd``), see
  :mod:`cohabit.placement.policies`;
* :class:`ClusterState`: the mutable placement view (``from_nodes``, ``apply``, ``release``,
  ``to_nodes``);
* :func:`select`: one scheduling decision, ``-> Bind | None``;
* :func:`typical_pods`, :class:`TypicalPods`, :func:`node_frag`, :func:`cluster_frag`: the
  FGD paper's typical-pod distribution and fragmentation.
"""

from __future__ import annotations

from cohabit.placement.frag import (
    TypicalPod,
    TypicalPods,
    node_frag,
    typical_pods,
)
from cohabit.placement.metrics import ClusterFrag, cluster_frag
from cohabit.placement.policies import POLICIES, Policy
from cohabit.placement.select import select, select_req
from cohabit.placement.state import ClusterState, OverCommitError, PodReq, pod_request

__all__ = [
    "POLICIES",
    "ClusterFrag",
    "ClusterState",
    "OverCommitError",
    "PodReq",
    "Policy",
    "TypicalPod",
    "TypicalPods",
    "cluster_frag",
    "node_frag",
    "pod_request",
    "select",
    "select_req",
    "typical_pods",
]
