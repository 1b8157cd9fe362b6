"""The `dagster-k8s/config` tag constants, as dagster-k8s turns them into real Job manifests.

The Job is built the way the K8sRunLauncher builds it at launch time (same functions, our
launcher config from k8s/dagster-instance.yaml, the run's tags), then validated against the
Kubernetes Job schema.
"""

from __future__ import annotations

import json
import uuid

import dagster as dg
import kubernetes
import kubernetes_validate
import pytest
import yaml
from dagster._core.storage.dagster_run import DagsterRun
from dagster_k8s import K8sRunLauncher
from dagster_k8s.job import construct_dagster_k8s_job, get_user_defined_k8s_config

from crypto_assets.deploy import k8s_tags
from crypto_assets.deploy.k8s_tags import (
    FEATURES_LARGE,
    INGEST_SMALL,
    K8S_CONFIG_TAG,
    SENTIMENT_CPU,
    SENTIMENT_GPU,
    run_tags,
)
from crypto_assets.paths import PROJECT_ROOT

ALL_TAGS = {"INGEST_SMALL": INGEST_SMALL, "SENTIMENT_GPU": SENTIMENT_GPU, "SENTIMENT_CPU": SENTIMENT_CPU,
            "FEATURES_LARGE": FEATURES_LARGE}
FAKE_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: not-a-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    """Our K8sRunLauncher config, loaded from a local fake kubeconfig instead of the cluster's."""
    doc = yaml.safe_load((PROJECT_ROOT / "k8s" / "dagster-instance.yaml").read_text())
    config = dict(yaml.safe_load(doc["data"]["dagster.yaml"])["run_launcher"]["config"])
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(FAKE_KUBECONFIG)
    config.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    return K8sRunLauncher(**config)


def run_job_manifest(launcher: K8sRunLauncher, tags: dict) -> dict:
    run = DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), tags=run_tags(tags))
    context = launcher.get_container_context_for_run(run)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image="registry.example.com/crypto-assets/user-code:0.1.0",
                                              run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name=f"dagster-run-{run.run_id}",
        pod_name=f"dagster-run-{run.run_id}",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/run-id": run.run_id},
    )
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


@pytest.mark.parametrize("name", sorted(ALL_TAGS))
def test_tag_validates_against_dagster_k8s_schema(name):
    config = get_user_defined_k8s_config(run_tags(ALL_TAGS[name]))
    resources = config.container_config["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"]


def test_op_tags_on_an_asset_reach_the_step_config():
    @dg.asset(op_tags=SENTIMENT_GPU)
    def scored() -> None: ...

    op_tags = scored.op.tags
    assert isinstance(op_tags[K8S_CONFIG_TAG], str)  # dagster serializes dict tag values
    config = get_user_defined_k8s_config(op_tags)
    assert config.container_config["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert config.pod_spec_config["node_selector"] == k8s_tags.GPU_NODE_SELECTOR


def test_gpu_run_pod_is_a_valid_job_on_a_gpu_node(launcher):
    job = run_job_manifest(launcher, SENTIMENT_GPU)
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == k8s_tags.GPU_NODE_SELECTOR
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    # Deep merge: the launcher's defaults stay where the tag says nothing.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["serviceAccountName"] == "dagster"


def test_run_pod_gets_the_instance_environment(launcher):
    job = run_job_manifest(launcher, INGEST_SMALL)
    kubernetes_validate.validate(job, "1.30.0", strict=True)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DAGSTER_HOME"] == "/opt/dagster/crypto_home"
    # dagster-k8s 0.29 passes the instance to run pods as an instance ref inside the
    # `execute_run` args (instance_config_map is required config but no longer mounted);
    # its `{env: DAGSTER_MYSQL_*}` sources resolve from these ConfigMaps/Secrets in the pod.
    assert not any(v.get("configMap", {}).get("name") == "crypto-dagster-instance" for v in pod.get("volumes") or [])
    env_from = {ref.get("secretRef", ref.get("configMapRef"))["name"] for ref in container["envFrom"]}
    assert {"crypto-env", "crypto-mysql-instance", "crypto-warehouse", "crypto-api-keys"} <= env_from
    # The ingestion tag shrinks the pod below the launcher default (4Gi).
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_run_tags_are_strings_and_round_trip():
    tags = run_tags(SENTIMENT_GPU)
    assert all(isinstance(v, str) for v in tags.values())
    assert json.loads(tags[K8S_CONFIG_TAG]) == SENTIMENT_GPU[K8S_CONFIG_TAG]
