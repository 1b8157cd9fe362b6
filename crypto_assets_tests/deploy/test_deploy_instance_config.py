"""The production dagster.yaml files pass Dagster's own instance-config validation.

Two files carry the instance config: deploy/dagster.mysql.yaml (MySQL from env, any host) and
the `dagster.yaml` inside k8s/dagster-instance.yaml (the same plus the K8sRunLauncher).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.config import mysql_config
from dagster_k8s import K8sRunLauncher
from dagster_mysql.utils import mysql_url_from_config

from crypto_assets.paths import PROJECT_ROOT
from crypto_assets.sources.catalog import source_specs

MYSQL_YAML = PROJECT_ROOT / "deploy" / "dagster.mysql.yaml"
K8S_INSTANCE = PROJECT_ROOT / "k8s" / "dagster-instance.yaml"
MYSQL_ENV = {
    "DAGSTER_MYSQL_HOST": "mysql.example",
    "DAGSTER_MYSQL_PORT": "3306",
    "DAGSTER_MYSQL_USER": "dagster",
    "DAGSTER_MYSQL_PASSWORD": "",  # empty but set: must be accepted
    "DAGSTER_MYSQL_DB": "dagster",
}
SHARED_SECTIONS = ("storage", "run_coordinator", "concurrency", "run_retries", "retention", "freshness", "telemetry")


def k8s_instance_yaml() -> str:
    return yaml.safe_load(K8S_INSTANCE.read_text())["data"]["dagster.yaml"]


def validate_instance_yaml(text: str, tmp_path: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(text)
    config, _custom_class = dagster_instance_config(str(home))
    return config


@pytest.fixture
def mysql_env(monkeypatch):
    for key, value in MYSQL_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("source", ["deploy", "k8s"])
def test_instance_yaml_validates_with_env_and_empty_password(source, tmp_path, mysql_env):
    text = MYSQL_YAML.read_text() if source == "deploy" else k8s_instance_yaml()
    config = validate_instance_yaml(text, tmp_path)
    # Resolve the env sources the way dagster-mysql does when it builds its storages: an
    # empty (but set) password is accepted and gives a URL without a password.
    storage = process_config(mysql_config(), config["storage"]["mysql"])
    assert storage.success, storage.errors
    assert mysql_url_from_config(storage.value) == "mysql+mysqlconnector://dagster:@mysql.example:3306/dagster"
    # Freshness is judged on data time by the project's sensor, not by Dagster's daemon.
    assert config["freshness"] == {"enabled": False}
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] and monitoring["free_slots_after_run_end_seconds"] > 0
    assert config["telemetry"] == {"enabled": False}
    pools = config["concurrency"]["pools"]
    assert pools["default_limit"] == 1 and pools["granularity"] == "op"


def test_unset_password_variable_fails_naming_it(tmp_path, mysql_env, monkeypatch):
    monkeypatch.delenv("DAGSTER_MYSQL_PASSWORD")
    config = validate_instance_yaml(MYSQL_YAML.read_text(), tmp_path)
    storage = process_config(mysql_config(), config["storage"]["mysql"])
    assert not storage.success
    assert "DAGSTER_MYSQL_PASSWORD" in str(storage.errors)


def test_shared_sections_are_identical():
    local = yaml.safe_load(MYSQL_YAML.read_text())
    k8s = yaml.safe_load(k8s_instance_yaml())
    for section in SHARED_SECTIONS:
        assert local[section] == k8s[section], f"section {section!r} differs between the two dagster.yaml files"


def test_k8s_run_launcher_config_validates_against_dagster_k8s():
    launcher = yaml.safe_load(k8s_instance_yaml())["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    # The launcher mounts the instance ConfigMap that holds this very file.
    name = yaml.safe_load(K8S_INSTANCE.read_text())["metadata"]["name"]
    assert launcher["config"]["instance_config_map"] == name


def test_validation_rejects_a_bad_pool_granularity(tmp_path, mysql_env):
    # The check above is only worth something if the validator bites.
    config = yaml.safe_load(MYSQL_YAML.read_text())
    broken = copy.deepcopy(config)
    broken["concurrency"]["pools"]["granularity"] = "step"
    with pytest.raises(DagsterInvalidConfigError, match="granularity"):
        validate_instance_yaml(yaml.safe_dump(broken), tmp_path)


def test_run_limits_under_run_coordinator_are_rejected_next_to_concurrency(tmp_path, mysql_env):
    config = yaml.safe_load(MYSQL_YAML.read_text())
    config["run_coordinator"]["config"] = {"max_concurrent_runs": 3}
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        validate_instance_yaml(yaml.safe_dump(config), tmp_path)


def test_every_source_declares_a_pool():
    # default_limit: 1 serializes each pool; a source without a pool would not be limited.
    specs = source_specs()
    assert specs, "resources/sources.yaml declares no source"
    missing = sorted(name for name, spec in specs.items() if not spec.pool)
    assert not missing, f"sources without a concurrency pool: {missing}"
