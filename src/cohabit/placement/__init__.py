"""cohabit.placement: filter -> score -> pick over nodes, and the GPU choice inside a node.

Public API:

* :data:`POLICIES`: the score plugins by name (``random``, ``dot-product``,
  ``gpu-clustering``, ``gpu-packing``, ``best-fit``, ``fgd``, and cohabit's own
  ``cohabit``: FGD minus an interference penalty), see :mod:`cohabit.placement.policies`;
* :class:`Interference`, :data:`Slowdown`, :func:`pressure_sensitivity_slowdown`: the
  interference view the ``cohabit`` policy reads (``ClusterState.set_interference``);
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
from cohabit.placement.interference import (
    NODE_RESOURCES,
    Interference,
    Slowdown,
    node_view,
    pressure_sensitivity_slowdown,
)
from cohabit.placement.metrics import ClusterFrag, cluster_frag
from cohabit.placement.policies import POLICIES, Policy
from cohabit.placement.select import select, select_req
from cohabit.placement.state import ClusterState, OverCommitError, PodReq, pod_request

__all__ = [
    "NODE_RESOURCES",
    "POLICIES",
    "Interference",
    "Slowdown",
    "node_view",
    "pressure_sensitivity_slowdown",
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
