"""Per-asset Kubernetes pod settings as `dagster-k8s/config` tags.

Where a tag takes effect:
- `@asset(op_tags=SENTIMENT_GPU)`: the *step* pod, when the job runs with `k8s_job_executor`
  (one pod per step). With the default executor all steps share the run pod, and op tags
  are ignored by the K8sRunLauncher.
- `run_tags(SENTIMENT_GPU)` on a job or automation sensor (`define_asset_job(tags=...)`,
  `AutomationConditionSensorDefinition(run_tags=...)`): the *run* pod.
Tag settings are deep-merged over the run launcher defaults in k8s/dagster-instance.yaml
(requests cpu 500m / memory 1Gi, limit memory 4Gi, non-root security context).

The dicts are plain `dagster-k8s/config` values (snake_case Kubernetes fields), validated
against dagster-k8s's schema and the Kubernetes Job schema in the tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

K8S_CONFIG_TAG = "dagster-k8s/config"

# The label NVIDIA's GPU feature discovery / GPU operator puts on GPU nodes; clusters that
# label or taint GPU nodes differently change these two constants.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def _pod(requests: Mapping[str, str], limits: Mapping[str, str], **pod_spec: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"container_config": {"resources": {"requests": dict(requests), "limits": dict(limits)}}}
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return {K8S_CONFIG_TAG: config}


# Rate-limited HTTP ingestion (prices, news, social, macro, on-chain): waits on the network,
# parses small payloads; the source pool (not the pod size) bounds its request rate.
INGEST_SMALL = _pod({"cpu": "100m", "memory": "256Mi"}, {"memory": "768Mi"})

# Sentiment scoring on a GPU node: one GPU, CPU for tokenization, memory for two BERT-base models.
SENTIMENT_GPU = _pod(
    {"cpu": "2", "memory": "6Gi", "nvidia.com/gpu": "1"},
    {"memory": "12Gi", "nvidia.com/gpu": "1"},
    node_selector=GPU_NODE_SELECTOR,
    tolerations=GPU_TOLERATIONS,
)

# Sentiment scoring without a GPU (compute-bound fp32/int8 BERT on CPU cores).
SENTIMENT_CPU = _pod({"cpu": "4", "memory": "4Gi"}, {"memory": "8Gi"})

# Indicators and the feature table: vectorised pandas over all symbols of a window.
FEATURES_LARGE = _pod({"cpu": "1", "memory": "2Gi"}, {"memory": "6Gi"})


def run_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """The same tags as run tags (string values, as run tags must be)."""
    return {key: value if isinstance(value, str) else json.dumps(value, sort_keys=True) for key, value in tags.items()}
