"""Raw JSON requests through a configured ``kubernetes.client.ApiClient``.

For API groups/versions the generated client lacks (``policy/v1beta1`` on a 1.20 server) and
for patches with an explicit content type. Uses the client's own TLS and bearer-token setup.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def request(
    api: ApiClient,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    query: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Send ``method path`` with a JSON ``body``; return the decoded JSON response.

    ``path`` starts with ``/`` (e.g. ``/apis/policy/v1beta1/poddisruptionbudgets``).
    Raises ``kubernetes.client.exceptions.ApiException`` with the server's status and body on
    any non-2xx answer (e.g. ``status == 429`` for an eviction a PDB forbids).
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    method_, url, headers_, body_, post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(method_, url, header_params=headers_, body=body_, post_params=post,
                        _request_timeout=timeout)
    data = resp.read()
    if not 200 <= resp.status < 300:
        raise ApiException(status=resp.status, reason=resp.reason,
                           body=data.decode(errors="replace"))
    return json.loads(data) if data else {}


def served_version(api: ApiClient, group: str, candidates: tuple[str, ...]) -> str | None:
    """The first of ``candidates`` (e.g. ``("v1", "v1beta1")``) that the server serves for
    API ``group``, or ``None``."""
    try:
        doc = request(api, "GET", f"/apis/{group}")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    served = {v["version"] for v in doc.get("versions", [])}
    return next((v for v in candidates if v in served), None)
