"""Kubernetes manifests, Helm values and the Dockerfile, checked offline.

Every manifest in k8s/ validates (strict: unknown fields are errors) against the Kubernetes
OpenAPI schemas bundled with `kubernetes-validate`. The Helm values are the official chart's,
which we cannot render offline; instead each Kubernetes-typed fragment of them (resources,
security contexts, env, volumes, probes) is put into a Pod and validated, and the names they
share with our manifests and dagster.yaml are cross-checked.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from crypto_assets.paths import PROJECT_ROOT

K8S = PROJECT_ROOT / "k8s"
VALUES = K8S / "helm" / "values.yaml"
DOCKERFILE = K8S / "Dockerfile"
# Oldest and newest Kubernetes minor versions we claim to support.
K8S_VERSIONS = ("1.30.0", "1.37.0")
PLACEHOLDER = re.compile(r"^REPLACE_ME")


def manifest_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_manifests() -> list[dict]:
    return [doc for path in manifest_files() for doc in load_all(path)]


def objects(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in all_manifests() if doc["kind"] == kind}


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def instance_config() -> dict:
    return yaml.safe_load(objects("ConfigMap")["crypto-dagster-instance"]["data"]["dagster.yaml"])


def launcher_config() -> dict:
    return instance_config()["run_launcher"]["config"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schema(path, version):
    docs = load_all(path)
    assert docs, f"{path.name} holds no manifest"
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_validator_rejects_a_misspelled_field():
    job = objects("Job")["crypto-instance-migrate"]
    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # not `resources`
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_expected_objects_exist_in_one_namespace():
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in all_manifests()}
    assert {
        ("Namespace", "crypto-assets"),
        ("ConfigMap", "crypto-env"),
        ("ConfigMap", "crypto-dagster-instance"),
        ("Secret", "crypto-mysql-instance"),
        ("Secret", "crypto-warehouse"),
        ("Secret", "crypto-api-keys"),
        ("Job", "crypto-instance-migrate"),
    } <= names
    namespaced = [doc for doc in all_manifests() if doc["kind"] != "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {launcher_config()["job_namespace"]}


# --- secrets -----------------------------------------------------------------------------


def test_secret_template_holds_placeholders_only():
    secrets = objects("Secret")
    for path in manifest_files():
        for doc in load_all(path):
            if doc["kind"] == "Secret":
                assert path.name == "secrets.example.yaml", f"a Secret outside the template: {path.name}"
    for name, secret in secrets.items():
        assert "data" not in secret, f"{name}: base64 `data` would hide real values; use stringData placeholders"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER.match(value), f"{name}.{key} is not a REPLACE_ME placeholder"


def test_instance_credentials_come_from_the_secret_and_configmap():
    env = objects("ConfigMap")["crypto-env"]["data"]
    mysql_secret = objects("Secret")["crypto-mysql-instance"]["stringData"]
    storage_env = {
        field["env"] for field in instance_config()["storage"]["mysql"]["mysql_db"].values() if isinstance(field, dict)
    }
    provided = set(env) | set(mysql_secret)
    assert storage_env <= provided, f"unset instance variables: {storage_env - provided}"
    assert {"DAGSTER_MYSQL_PASSWORD", "DAGSTER_MYSQL_USER"} <= set(mysql_secret)
    assert not any("PASSWORD" in key or "KEY" in key or "URL" in key for key in env), "secret-looking key in ConfigMap"


def test_helm_values_hold_no_credentials():
    suspicious = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif re.search(r"password|secret|token|apikey|api_key", path, re.I) and isinstance(node, str):
            if not (node.startswith("unused") or path.endswith(("Name", ".name")) or "postgresqlSecretName" in path):
                suspicious.append(path)

    walk(values(), "values")
    assert not suspicious, f"credential-looking values in values.yaml: {suspicious}"


# --- Helm values ---------------------------------------------------------------------------


def env_from(component: dict) -> list[dict]:
    return [{"configMapRef": ref} for ref in component.get("envConfigMaps", [])] + [
        {"secretRef": ref} for ref in component.get("envSecrets", [])
    ]


def pod_from_values(name: str, component: dict, port: int | None = None) -> dict:
    """The Pod the chart would make from a values component (only the fragments we set)."""
    container = {
        "name": name,
        "image": f"{component['image']['repository']}:{component['image']['tag']}",
        "imagePullPolicy": component["image"]["pullPolicy"],
        "env": component.get("env", []),
        "envFrom": env_from(component),
        "volumeMounts": component.get("volumeMounts", []),
        "resources": component["resources"],
        "securityContext": component["securityContext"],
    }
    if "readinessProbe" in component:
        container["readinessProbe"] = component["readinessProbe"]
    if port:
        container["ports"] = [{"containerPort": port, "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "crypto-assets"},
        "spec": {
            "securityContext": component["podSecurityContext"],
            "containers": [container],
            "volumes": component.get("volumes", []),
        },
    }


def chart_components() -> dict[str, tuple[dict, int | None]]:
    v = values()
    user = v["dagster-user-deployments"]["deployments"][0]
    return {
        "webserver": (v["dagsterWebserver"], v["dagsterWebserver"]["service"]["port"]),
        "daemon": (v["dagsterDaemon"], None),
        "user-code": (user, user["port"]),
    }


@pytest.mark.parametrize("component", ["webserver", "daemon", "user-code"])
def test_values_fragments_are_valid_pod_specs(component):
    values_part, port = chart_components()[component]
    pod = pod_from_values(component, values_part, port)
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    assert values_part["podSecurityContext"]["runAsNonRoot"] is True
    assert values_part["resources"]["requests"] and values_part["resources"]["limits"]["memory"]


def test_values_use_mysql_instance_not_postgres():
    v = values()
    launcher = launcher_config()
    assert v["postgresql"]["enabled"] is False
    assert v["migrate"]["enabled"] is False
    assert v["serviceAccount"]["name"] == launcher["service_account_name"]
    instance_cm = objects("ConfigMap")["crypto-dagster-instance"]["metadata"]["name"]
    for name in ("dagsterWebserver", "dagsterDaemon"):
        part = v[name]
        assert part["checkDbReadyInitContainer"] is False, f"{name} would wait for Postgres forever"
        home = {e["name"]: e["value"] for e in part["env"]}["DAGSTER_HOME"]
        assert home == launcher["dagster_home"]
        volume = next(vol for vol in part["volumes"] if vol.get("configMap", {}).get("name") == instance_cm)
        mount = next(m for m in part["volumeMounts"] if m["name"] == volume["name"])
        assert (mount["mountPath"], mount["subPath"]) == (f"{home}/dagster.yaml", "dagster.yaml")
        assert home != v["global"]["dagsterHome"], "would collide with the chart's own instance mount"


def test_values_reference_existing_configmaps_and_secrets():
    configmaps, secrets = set(objects("ConfigMap")), set(objects("Secret"))
    for name, (part, _port) in chart_components().items():
        for ref in part.get("envConfigMaps", []):
            assert ref["name"] in configmaps, f"{name}: ConfigMap {ref['name']} not in k8s/"
        for ref in part.get("envSecrets", []):
            assert ref["name"] in secrets, f"{name}: Secret {ref['name']} not in k8s/"
        assert any(ref["name"] == "crypto-mysql-instance" for ref in part["envSecrets"]), f"{name} lacks DB creds"
    launcher = launcher_config()
    assert set(launcher["env_config_maps"]) <= configmaps
    # Run pods get every Secret but the data API's own (keys, token secret, Redis URL: k8s/api.yaml).
    assert set(launcher["env_secrets"]) == secrets - {"crypto-data-api"}


def test_one_image_everywhere_and_webserver_probe_on_its_port():
    v = values()
    images = {f"{part['image']['repository']}:{part['image']['tag']}" for part, _ in chart_components().values()}
    job_image = objects("Job")["crypto-instance-migrate"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert images == {job_image}
    web = v["dagsterWebserver"]
    assert web["readinessProbe"]["httpGet"]["port"] == web["service"]["port"] > 1024  # non-root cannot bind < 1024
    assert v["dagster-user-deployments"]["deployments"][0]["codeServerArgs"] == ["-m", "crypto_assets.definitions"]


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_base_user_port_and_command():
    instructions = dockerfile_instructions()
    froms = [arg for op, arg in instructions if op == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", froms[0])
    args = dict(arg.split("=", 1) for op, arg in instructions if op == "ARG" and "=" in arg)
    assert args["INSTALL_ML"] == "false"
    assert args["TORCH_VERSION"] == "2.13.0" and args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    ops = [op for op, _ in instructions]
    user = [arg for op, arg in instructions if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert ops.index("USER") > max(i for i, op in enumerate(ops) if op == "RUN"), "a RUN after USER runs as non-root?"
    assert ("EXPOSE", "3030") in instructions
    # The chart and the K8sRunLauncher pass full command lines as `args`: no ENTRYPOINT.
    assert "ENTRYPOINT" not in ops
    cmd = [arg for op, arg in instructions if op == "CMD"][-1]
    assert cmd.startswith('["dagster", "code-server", "start"') and '"crypto_assets.definitions"' in cmd
    run = " ".join(arg for op, arg in instructions if op == "RUN")
    assert '"torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"' in run
    assert '.[deploy,ml]' in run and '.[deploy]' in run


def test_dockerfile_copies_only_project_files_not_ignored():
    copies = [arg.split()[0] for op, arg in dockerfile_instructions() if op == "COPY"]
    assert set(copies) <= {"pyproject.toml", "README.md", "crypto_assets", "resources"}
    assert (PROJECT_ROOT / "crypto_assets").is_dir() and (PROJECT_ROOT / "resources").is_dir()
    ignored = [p.strip() for p in (K8S / "Dockerfile.dockerignore").read_text().splitlines()]
    ignored = [p for p in ignored if p and not p.startswith("#")]
    for source in copies:
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), f"{source} is dockerignored"
    assert ".git" in ignored and ".venv" in ignored and any(p.startswith(".env") for p in ignored)
