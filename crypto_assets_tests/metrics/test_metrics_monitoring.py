"""Monitoring files: alert rules (promtool), the PrometheusRule and ServiceMonitors, the Grafana
dashboard (every query names an exported metric), the API/exporter manifests and the image's extras."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib

import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crypto_assets.paths import PROJECT_ROOT
from crypto_assets_tests.deploy.test_deploy_manifests import DOCKERFILE, K8S_VERSIONS, dockerfile_instructions, objects
from crypto_assets_tests.metrics.test_metrics_exporter import require_binary

MONITORING = PROJECT_ROOT / "k8s" / "monitoring"
RULES = MONITORING / "prometheus-rules.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
METRIC = re.compile(r"\bcrypto_[a-z0-9_]+\b")


def promtool(*args: str) -> str:
    binary = require_binary("promtool")
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def load_yaml_docs(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- alert rules -----------------------------------------------------------------------------------


def test_rules_pass_promtool_check_and_their_unit_tests():
    assert "SUCCESS: 9 rules found" in promtool("check", "rules", str(RULES))
    promtool("test", "rules", str(MONITORING / "prometheus-rules.test.yaml"))


def test_local_prometheus_config_is_valid():
    promtool("check", "config", str(MONITORING / "local" / "prometheus.yml"))


@pytest.mark.slow
def test_prometheus_rule_holds_the_same_rules_and_they_pass_promtool(tmp_path):
    (rule,) = load_yaml_docs(MONITORING / "prometheusrule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    extracted = tmp_path / "from-prometheusrule.yaml"
    extracted.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    promtool("check", "rules", str(extracted))


def test_alerts_cover_freshness_health_sources_and_api_p99():
    rules = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    warn, fail = rules["CryptoDatasetFreshnessWarn"]["expr"], rules["CryptoDatasetFreshnessFail"]["expr"]
    assert "crypto_dataset_data_age_seconds" in warn and "crypto_dataset_freshness_warn_after_seconds" in warn
    assert "crypto_dataset_freshness_fail_after_seconds" in fail
    assert "< 80" in rules["CryptoHealthWarning"]["expr"] and "< 60" in rules["CryptoHealthCritical"]["expr"]
    assert "crypto_source_errors_total" in rules["CryptoSourceErrorRatioHigh"]["expr"]
    assert "histogram_quantile(0.99" in rules["CryptoApiLatencyP99High"]["expr"]


# --- ServiceMonitors and the dashboard ConfigMap ---------------------------------------------------


def test_service_monitors_select_the_services_and_their_ports():
    services = objects("Service")
    monitors = load_yaml_docs(MONITORING / "servicemonitors.yaml")
    assert {m["metadata"]["name"] for m in monitors} == {"crypto-api", "crypto-metrics-exporter"}
    for monitor in monitors:
        assert monitor["kind"] == "ServiceMonitor"
        wanted = monitor["spec"]["selector"]["matchLabels"]
        matching = [s for s in services.values() if wanted.items() <= s["metadata"]["labels"].items()]
        assert len(matching) == 1, monitor["metadata"]["name"]
        (service,) = matching
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
        ports = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports and endpoint["path"] == "/metrics"


def dashboard_configmap() -> dict:
    """The ConfigMap `kubectl apply -k k8s/monitoring` generates for the dashboard."""
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    data = {}
    for entry in generator["files"]:
        key, _, path = entry.partition("=")
        data[key] = (MONITORING / path).read_text()
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": generator["name"], "namespace": kustomization["namespace"],
                         "labels": generator["options"]["labels"]},
            "data": data}


def test_dashboard_configmap_is_valid_and_labelled_for_the_grafana_sidecar():
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (MONITORING / resource).is_file(), resource
    configmap = dashboard_configmap()
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(configmap, version, strict=True)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    (body,) = configmap["data"].values()
    assert json.loads(body)["uid"] == "crypto-assets"
    assert len(body.encode()) < 256 * 1024  # fits kubectl apply's last-applied annotation


# --- every query names an exported metric -----------------------------------------------------------


@pytest.fixture(scope="module")
def exported_names(tmp_path_factory) -> set[str]:
    """Every sample name the exporter (real definitions) and the API expose, read from their exposition."""
    import dagster as dg

    from crypto_assets.api.metrics import ApiMetrics
    from crypto_assets.definitions import defs
    from crypto_assets.metrics.exporter import collector_for
    from crypto_assets.warehouse.factory import open_warehouse

    warehouse = open_warehouse(f"sqlite:///{tmp_path_factory.mktemp('names') / 'empty.sqlite'}")
    names = set()
    with dg.DagsterInstance.ephemeral() as instance:
        registry = CollectorRegistry(auto_describe=False)
        collector = collector_for(defs, instance, warehouse)
        registry.register(collector)
        texts = [generate_latest(registry).decode(), generate_latest(ApiMetrics().registry).decode()]
        assert all(collector.last_success.values())
    for text in texts:
        for family in text_string_to_metric_families(text):
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
            names |= {family.name + suffix for suffix in suffixes}
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_dashboard_query_names_exported_metrics(exported_names):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"] and all(panel["targets"] for panel in dashboard["panels"])
    for title, expr in dashboard_queries():
        used = set(METRIC.findall(expr))
        assert used, f"{title}: {expr} names no crypto_ metric"
        assert used <= exported_names, f"{title}: not exported: {sorted(used - exported_names)}"
    titles = " | ".join(t for t, _ in dashboard_queries()).lower()
    for needed in ("freshness lag", "health", "rows per hour", "errors and 429s", "run duration", "p50 / p99",
                   "cache hit ratio"):
        assert needed in titles, needed
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {"${datasource}"}


def test_every_alert_names_exported_metrics(exported_names):
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            used = set(METRIC.findall(rule["expr"]))
            assert used and used <= exported_names, (rule["alert"], sorted(used - exported_names))


def test_metric_names_follow_prometheus_conventions(exported_names):
    for name in exported_names:
        assert name.startswith("crypto_") and re.fullmatch(r"[a-z][a-z0-9_]*", name), name
    counters = {n for n in exported_names if n.endswith("_total")}
    assert {"crypto_source_requests_total", "crypto_source_errors_total", "crypto_api_requests_total",
            "crypto_api_rate_limited_total", "crypto_dataset_rows_written_total"} <= counters
    assert {"crypto_dataset_data_age_seconds", "crypto_api_request_duration_seconds_bucket",
            "crypto_run_duration_seconds_bucket"} <= exported_names


# --- the API and the exporter on Kubernetes ----------------------------------------------------------


@pytest.mark.parametrize("name, port, command", [("crypto-api", 8000, "api"),
                                                 ("crypto-metrics-exporter", 9464, "metrics")])
def test_api_and_exporter_deployments(name, port, command):
    deployment, service = objects("Deployment")[name], objects("Service")[name]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["crypto-assets", command]
    assert container["command"][container["command"].index("--port") + 1] == str(port)
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["port"] == container["ports"][0]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    secrets, configmaps = set(objects("Secret")), set(objects("ConfigMap"))
    for ref in container["envFrom"]:
        if "secretRef" in ref:
            assert ref["secretRef"]["name"] in secrets
        else:
            assert ref["configMapRef"]["name"] in configmaps
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    job_image = objects("Job")["crypto-instance-migrate"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["image"] == job_image
    assert not container.get("env") or all("value" not in e or "KEY" not in e["name"] for e in container["env"])


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_api_keys_and_redis_come_from_the_api_secret():
    container = objects("Deployment")["crypto-api"]["spec"]["template"]["spec"]["containers"][0]
    refs = {ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref}
    secret = objects("Secret")["crypto-data-api"]["stringData"]
    assert "crypto-data-api" in refs
    assert {"CRYPTO_API_KEYS", "CRYPTO_API_TOKEN_SECRET", "REDIS_URL"} <= set(secret)


# --- the image's extras -------------------------------------------------------------------------------


def dockerfile_extras() -> set[str]:
    """Extras of every `pip install <path>[extras]` in the Dockerfile's RUN instructions."""
    found = set()
    for op, arg in dockerfile_instructions():
        if op != "RUN":
            continue
        for command in re.split(r"&&|;|\|\||\bthen\b|\belse\b|\bfi\b", arg):
            words = shlex.split(command)
            if words[:2] != ["pip", "install"]:
                continue
            for word in words[2:]:
                if word.startswith(".") and "[" in word:
                    found |= Requirement("crypto-assets" + word[word.index("["):]).extras
    return found


def test_every_extra_the_dockerfile_installs_exists_in_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    named = dockerfile_extras()
    assert {"deploy", "ml"} <= named, named
    assert named <= set(extras), f"{DOCKERFILE.name} installs extras pyproject.toml lacks: {named - set(extras)}"
    # Extras that name the project's own extras must name existing ones too.
    for extra, requirements in extras.items():
        for requirement in map(Requirement, requirements):
            if requirement.name == project["name"]:
                assert requirement.extras <= set(extras), (extra, requirement)
    deploy = {Requirement(r).name for r in extras["deploy"]}
    reachable = {Requirement(r).name for r in extras["api"]} if project["name"] in deploy else deploy
    assert "prometheus-client" in reachable  # the image serves /metrics and `crypto-assets metrics`
