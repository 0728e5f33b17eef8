"""deploy/ checked offline: what its files say about stanceline is true of stanceline.

No Docker engine or cluster is needed. Every YAML file parses; every container runs a
real ``stanceline`` subcommand with real options (parsed by the CLI's own click tree);
each runs as the Postgres role it is meant to; the probe and scrape paths are served by
the app that container runs; every ``STANCELINE_*`` variable is a setting with a valid
value; the manifests' selectors, ports and names agree with each other; every metric the
Grafana dashboard queries is one stanceline exports; the image's entrypoint is
``stanceline``; and the scaling guide quotes the README's current benchmark figures.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

import stanceline.projector.metrics  # noqa: F401  (registers the projector's metrics)
from stanceline.cli import app as cli_app
from stanceline.health import ProjectorHealth
from stanceline.projector.probes import probe_app
from stanceline.readmodel.app import create_app
from stanceline.settings import Settings
from support.http import serve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DASHBOARD = DEPLOY / "grafana" / "stanceline.json"

PROJECTOR_METRICS = frozenset(
    {
        "stanceline_stream_entries_consumed_total",
        "stanceline_events_appended_total",
        "stanceline_events_duplicate_total",
        "stanceline_dead_letters_total",
        "stanceline_deliveries_reclaimed_total",
        "stanceline_projection_latency_seconds",
        "stanceline_projector_batch_seconds",
        "stanceline_projector_store_up",
        "stanceline_consumer_group_lag",
        "stanceline_consumer_group_pending",
    }
)
HTTP_METRICS = frozenset(
    {"stanceline_http_requests_total", "stanceline_http_request_duration_seconds"}
)
HISTOGRAMS = frozenset(
    {
        "stanceline_projection_latency_seconds",
        "stanceline_projector_batch_seconds",
        "stanceline_http_request_duration_seconds",
    }
)

# Which Postgres role each subcommand runs as (deploy/roles.sql).
ROLE_OF = {
    "migrate": "owner",
    "rebuild": "owner",
    "projector": "writer",
    "status": "writer",
    "replay": "writer",
    "dlq": "writer",
    "publish": None,
    "api": "reader",
}

# The redis-streams trigger's metadata (KEDA's scaler docs and source).
KEDA_REDIS_STREAMS_METADATA = frozenset(
    {
        "address",
        "addressFromEnv",
        "host",
        "hostFromEnv",
        "port",
        "portFromEnv",
        "usernameFromEnv",
        "passwordFromEnv",
        "stream",
        "consumerGroup",
        "pendingEntriesCount",
        "streamLength",
        "lagCount",
        "activationLagCount",
        "databaseIndex",
        "enableTLS",
        "unsafeSsl",
    }
)


# --------------------------------------------------------------------------- loading


def _yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


@cache
def _compose() -> dict[str, Any]:
    (document,) = _documents(COMPOSE)
    return document


def _k8s_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in _documents(path):
            yield path.name, document


def _name(obj: dict[str, Any]) -> str:
    metadata = obj["metadata"]
    return str(metadata.get("name") or metadata.get("generateName"))


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def _workloads() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file, workload, container) for every container of every workload in k8s/."""
    found = []
    for file, obj in _k8s_objects():
        spec = _pod_spec(obj)
        if spec is None:
            continue
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            found.append((file, obj, container))
    return found


def _stanceline_services() -> dict[str, dict[str, Any]]:
    """Compose services that run the image deploy/Dockerfile builds."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if (service.get("build") or {}).get("dockerfile") == "deploy/Dockerfile"
    }


def _compose_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


def _literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {
        item["name"]: str(item["value"]) for item in container.get("env", []) if "value" in item
    }


# --------------------------------------------------------------------------- the CLI

ROOT_COMMAND = typer.main.get_command(cli_app)


def _invocation(args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The subcommand path and parsed options of ``stanceline *args``, by the CLI's own
    parser (nothing runs): an unknown subcommand, option or value fails here."""
    command: Any = ROOT_COMMAND
    path: list[str] = []
    rest = [str(arg) for arg in args]
    while hasattr(command, "commands"):
        assert rest, f"`stanceline {' '.join(path)}` needs a subcommand"
        name = rest.pop(0)
        assert name in command.commands, (
            f"`{name}` is not a subcommand of `stanceline {' '.join(path)}`"
            f" (it has: {', '.join(sorted(command.commands))})"
        )
        path.append(name)
        command = command.commands[name]
    context = command.make_context(" ".join(["stanceline", *path]), rest)
    return path, dict(context.params)


def _compose_invocations() -> list[tuple[str, list[str]]]:
    found = []
    for name, service in _stanceline_services().items():
        command = service.get("command")
        assert isinstance(command, list), f"compose {name}: command must be a list (exec form)"
        assert "entrypoint" not in service, f"compose {name}: the image's ENTRYPOINT must run"
        found.append((name, command))
    return found


def _k8s_invocations() -> list[tuple[str, list[str]]]:
    return [
        (f"{file}:{_name(obj)}/{container['name']}", container["args"])
        for file, obj, container in _workloads()
    ]


def test_compose_has_the_stanceline_services() -> None:
    assert {"migrate", "projector", "api"} <= set(_stanceline_services())
    assert {"postgres", "redis", "roles"} <= set(_compose()["services"])


@pytest.mark.parametrize(
    ("where", "args"), [*_compose_invocations(), *_k8s_invocations()], ids=lambda v: str(v)
)
def test_every_command_is_a_real_stanceline_subcommand(where: str, args: list[str]) -> None:
    _invocation(args)


def test_every_k8s_container_runs_the_stanceline_image_entrypoint() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = [entry["name"] for entry in kustomization["images"]]
    assert _workloads()
    for file, obj, container in _workloads():
        where = f"{file}:{_name(obj)}/{container['name']}"
        assert container["image"] == image, f"{where}: kustomization.yaml's images: misses it"
        assert "command" not in container, f"{where}: the image's ENTRYPOINT must run"
        assert container.get("args"), f"{where}: no subcommand"


def test_the_api_and_the_projectors_listen_beyond_loopback() -> None:
    """127.0.0.1 (the defaults) is unreachable from outside the container: from the
    kubelet's probes, Prometheus, other containers and a published port."""
    for name, args in [*_compose_invocations(), *_k8s_invocations()]:
        path, params = _invocation(args)
        if path == ["api"]:
            assert params["host"] == "0.0.0.0", f"{name}: api --host 0.0.0.0"
    env = _compose_environment(_compose()["services"]["projector"])
    assert env["STANCELINE_METRICS_HOST"] == "0.0.0.0"
    assert env["STANCELINE_METRICS_PORT"]
    for file, obj, container in _workloads():
        if container["args"][0] == "projector":
            env = _literal_env(container)
            assert env.get("STANCELINE_METRICS_HOST") == "0.0.0.0", f"{file}:{_name(obj)}"
            assert env.get("STANCELINE_METRICS_PORT"), f"{file}:{_name(obj)}"


# --------------------------------------------------------------------------- YAML


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert _documents(path)


def test_kustomization_lists_existing_files_and_only_generated_jobs_stay_out() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    resources = set(kustomization["resources"])
    for resource in resources:
        assert (K8S / resource).is_file(), resource
    for path in K8S.glob("*.yaml"):
        if path.name == "kustomization.yaml" or path.name in resources:
            continue
        # Made with `kubectl create` (generateName), which kustomize cannot name.
        for document in _documents(path):
            assert document["kind"] == "Job", path
            assert "generateName" in document["metadata"], path


# --------------------------------------------------------------------------- settings


def _setting_names() -> set[str]:
    return {f"STANCELINE_{field.upper()}" for field in Settings.model_fields}


def _env_entries() -> Iterator[tuple[str, str, str | None]]:
    """(where, variable, literal value or None) for every variable deploy/ sets."""
    for name, service in _compose()["services"].items():
        for key, value in _compose_environment(service).items():
            yield f"compose {name}", key, None if "${" in value else value
    for file, obj in _k8s_objects():
        if obj["kind"] == "ConfigMap":
            for key, value in obj["data"].items():
                yield f"{file}:{_name(obj)}", key, str(value)
    for file, obj, container in _workloads():
        for item in container.get("env", []):
            yield f"{file}:{_name(obj)}", item["name"], item.get("value")


def test_every_stanceline_variable_is_a_setting_with_a_valid_value() -> None:
    known = _setting_names()
    entries = list(_env_entries())
    assert any(key.startswith("STANCELINE_") for _, key, _ in entries)
    for where, key, value in entries:
        if not key.startswith("STANCELINE_"):
            continue
        assert key in known, f"{where}: {key} is not a setting (settings.py has {sorted(known)})"
        if value is not None:
            field = key.removeprefix("STANCELINE_").lower()
            Settings(**{field: value})  # raises on a value the setting refuses


def test_every_configmap_is_used_and_every_secret_is_referenced_not_inlined() -> None:
    kinds = [obj["kind"] for _, obj in _k8s_objects()]
    assert "Secret" not in kinds, "Secrets are created by the operator (deploy/README.md)"
    configmaps = {_name(obj) for _, obj in _k8s_objects() if obj["kind"] == "ConfigMap"}
    used = {
        source["configMapRef"]["name"]
        for _, _, container in _workloads()
        for source in container.get("envFrom", [])
        if "configMapRef" in source
    }
    assert used == configmaps
    for file, obj, container in _workloads():
        for item in container.get("env", []):
            if re.search(r"URL|TOKEN|PASSWORD", item["name"]):
                assert "secretKeyRef" in item.get("valueFrom", {}), (
                    f"{file}:{_name(obj)}: {item['name']} must come from a Secret"
                )


def test_compose_secrets_have_no_defaults() -> None:
    text = COMPOSE.read_text()
    references = re.findall(r"\$\{([A-Z_]+)(:?[-?+])?", text)
    secrets = [(name, how) for name, how in references if "PASSWORD" in name]
    assert secrets
    for name, how in secrets:
        assert how == ":?", f"${{{name}}} must be required (${{{name}:?...}}), not defaulted"


# --------------------------------------------------------------------------- roles


def _compose_role(service: dict[str, Any]) -> str | None:
    url = _compose_environment(service).get("STANCELINE_DATABASE_URL", "")
    found = re.match(r"postgresql://stanceline_(owner|writer|reader):", url)
    return found.group(1) if found else None


def _k8s_role(container: dict[str, Any]) -> str | None:
    for item in container.get("env", []):
        if item["name"] == "STANCELINE_DATABASE_URL":
            key = item["valueFrom"]["secretKeyRef"]["key"]
            found = re.fullmatch(r"(owner|writer|reader)-url", key)
            assert found, f"secret key {key}: expected owner-url, writer-url or reader-url"
            return found.group(1)
    return None


def test_each_part_runs_as_its_postgres_role() -> None:
    for name, service in _stanceline_services().items():
        path, _ = _invocation(service["command"])
        assert _compose_role(service) == ROLE_OF[path[0]], f"compose {name}"
    for file, obj, container in _workloads():
        path, _ = _invocation(container["args"])
        assert _k8s_role(container) == ROLE_OF[path[0]], f"{file}:{_name(obj)}"


def test_the_api_gets_no_write_credentials() -> None:
    api = _compose()["services"]["api"]
    assert "STANCELINE_REDIS_URL" not in _compose_environment(api)
    assert _compose_role(api) == "reader"


# --------------------------------------------------------------------------- compose order


def test_compose_starts_each_part_after_what_it_needs() -> None:
    services = _compose()["services"]

    def condition(service: str, on: str) -> str:
        return str(services[service]["depends_on"][on]["condition"])

    assert condition("roles", "postgres") == "service_healthy"
    assert condition("migrate", "roles") == "service_completed_successfully"
    assert condition("projector", "migrate") == "service_completed_successfully"
    assert condition("projector", "redis") == "service_healthy"
    assert condition("api", "migrate") == "service_completed_successfully"
    assert services["projector"]["deploy"]["replicas"] == 2
    for name in ("postgres", "redis", "projector", "api"):
        assert services[name].get("healthcheck"), f"compose {name} has no health check"
    roles = services["roles"]
    (mount,) = roles["volumes"]
    source = mount.split(":")[0]
    assert (DEPLOY / source).resolve() == DEPLOY / "roles.sql"
    assert "/deploy/roles.sql" in " ".join(roles["command"])


# --------------------------------------------------------------------------- probes


@cache
def _served() -> dict[str, FastAPI]:
    """The read model (its database, port 1 on loopback, refuses at once) and a standalone
    projector's probe app (not consuming), each served in-process."""
    return {
        "api": create_app(database_url="postgresql://x@127.0.0.1:1/x"),
        "projector": probe_app(ProjectorHealth()),  # type: ignore[dict-item]
    }


async def _get(part: str, *paths: str) -> list[httpx.Response]:
    async with serve(_served()[part]) as http:
        return [await http.get(path, follow_redirects=True) for path in paths]


def _probes() -> list[tuple[str, str, int, str]]:
    """(where, subcommand, port, path) for every probe and health check in deploy/."""
    found = []
    for name, service in _stanceline_services().items():
        test = service.get("healthcheck", {}).get("test")
        if not test:
            continue
        for port, path in re.findall(r"http://[^/:'\"]+:(\d+)(/[\w/-]*)", " ".join(test)):
            found.append((f"compose {name}", service["command"][0], int(port), path))
    for file, obj, container in _workloads():
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container.get(probe, {}).get("httpGet")
            if get:
                port = ports.get(get["port"], get["port"])
                found.append(
                    (f"{file}:{_name(obj)} {probe}", container["args"][0], int(port), get["path"])
                )
    return found


def _listening_port(service_args: list[str], env: dict[str, str]) -> int:
    path, params = _invocation(service_args)
    if path == ["api"]:
        return int(params["port"])
    return int(env["STANCELINE_METRICS_PORT"])


def test_every_probe_targets_the_port_its_process_listens_on() -> None:
    probes = _probes()
    assert {part for _, part, _, _ in probes} == {"api", "projector"}
    assert {path for *_, path in probes} == {"/healthz", "/readyz"}
    for name, service in _stanceline_services().items():
        if not service.get("healthcheck"):
            continue
        port = _listening_port(service["command"], _compose_environment(service))
        for where, _, probe_port, _ in probes:
            if where == f"compose {name}":
                assert probe_port == port, where
    for file, obj, container in _workloads():
        if not container.get("readinessProbe"):
            continue
        port = _listening_port(container["args"], _literal_env(container))
        declared = {p["containerPort"] for p in container["ports"]}
        assert declared == {port}, f"{file}:{_name(obj)}: containerPort is not the one it serves"


@pytest.mark.parametrize(
    ("where", "part", "path"), sorted({(w, part, path) for w, part, _, path in _probes()})
)
async def test_every_probe_path_is_served(where: str, part: str, path: str) -> None:
    (response,) = await _get(part, path)
    if path == "/healthz":
        assert response.status_code == 200, where
    else:  # /readyz: 503 here (no database, a projector not consuming), but served
        assert response.status_code in (200, 503), where


@pytest.mark.parametrize("part", ["api", "projector"])
async def test_metrics_are_served_where_prometheus_scrapes(part: str) -> None:
    for _, obj in _k8s_objects():
        annotations = (
            obj.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        )
        if annotations.get("prometheus.io/scrape") == "true":
            assert annotations["prometheus.io/path"] == "/metrics"
    (response,) = await _get(part, "/metrics")
    assert response.status_code == 200
    assert "# TYPE" in response.text


# --------------------------------------------------------------------------- k8s wiring


def _pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_services_and_budgets_select_pods_and_name_their_ports() -> None:
    objects = [obj for _, obj in _k8s_objects()]
    deployments = [obj for obj in objects if obj["kind"] == "Deployment"]
    assert {_name(d) for d in deployments} == {"stanceline-api", "stanceline-projector"}
    for deployment in deployments:
        assert _matches(deployment["spec"]["selector"]["matchLabels"], _pod_labels(deployment))
    for obj in objects:
        if obj["kind"] == "Service":
            (target,) = [
                d for d in deployments if _matches(obj["spec"]["selector"], _pod_labels(d))
            ]
            container_ports = {
                p["name"]
                for c in target["spec"]["template"]["spec"]["containers"]
                for p in c["ports"]
            }
            for port in obj["spec"]["ports"]:
                assert port["targetPort"] in container_ports, _name(obj)
        if obj["kind"] == "PodDisruptionBudget":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert [d for d in deployments if _matches(selector, _pod_labels(d))], _name(obj)
    kinds = {obj["kind"] for obj in objects}
    assert {"Service", "PodDisruptionBudget", "Job", "ScaledObject"} <= kinds


def test_the_migration_job_runs_migrate_as_the_owner() -> None:
    jobs = [
        (obj, container)
        for _, obj, container in _workloads()
        if obj["kind"] == "Job" and "name" in obj["metadata"]
    ]
    ((_, container),) = jobs
    assert container["args"] == ["migrate"]
    assert _k8s_role(container) == "owner"


def test_keda_scales_the_projectors_on_the_consumer_group() -> None:
    objects = [obj for _, obj in _k8s_objects()]
    (scaled,) = [obj for obj in objects if obj["kind"] == "ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "stanceline-projector"
    assert "replicas" not in next(
        obj["spec"] for obj in objects if _name(obj) == "stanceline-projector"
    ), "KEDA owns the projectors' count; `replicas:` would be reset by every apply"
    (config,) = [obj["data"] for obj in objects if obj["kind"] == "ConfigMap"]
    auths = {_name(obj) for obj in objects if obj["kind"] == "TriggerAuthentication"}
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"redis-streams"}
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert set(metadata) <= KEDA_REDIS_STREAMS_METADATA, (
            set(metadata) - KEDA_REDIS_STREAMS_METADATA
        )
        assert all(isinstance(value, str) for value in metadata.values()), "KEDA wants strings"
        assert metadata["stream"] == config["STANCELINE_STREAM"]
        assert metadata["consumerGroup"] == config["STANCELINE_GROUP"]
        assert trigger["authenticationRef"]["name"] in auths
    # A trigger with lagCount scales on the lag (Redis 7); one without, on pending entries.
    lag = [t["metadata"] for t in triggers if "lagCount" in t["metadata"]]
    pending = [t["metadata"] for t in triggers if "pendingEntriesCount" in t["metadata"]]
    assert len(lag) == 1
    assert "activationLagCount" in lag[0]
    assert len(pending) == 1
    assert "lagCount" not in pending[0]
    in_flight = int(config["STANCELINE_BATCH_SIZE"]) * (
        int(config["STANCELINE_READ_AHEAD"]) + int(config["STANCELINE_COMMITTERS"])
    )
    assert int(pending[0]["pendingEntriesCount"]) > in_flight, (
        "below one busy projector's in-flight entries, the pending trigger adds replicas"
        " for being busy"
    )


# --------------------------------------------------------------------------- Dockerfile


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_dockerfile_is_multi_stage_and_runs_stanceline_as_a_user() -> None:
    instructions = _instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )
    final = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stages[-1].split()[0])
    assert final == "python:3.11-slim"
    final_stage = instructions[
        max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM") :
    ]
    (entrypoint,) = [rest for keyword, rest in final_stage if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["stanceline"]
    users = [rest for keyword, rest in final_stage if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any("--from=builder" in rest or "from=builder" in rest for _, rest in final_stage)


def test_dockerfile_copies_what_the_wheel_is_built_from() -> None:
    sources = []
    for keyword, rest in _instructions():
        if keyword == "COPY" and "--from" not in rest:
            *paths, _ = rest.split()
            sources += [path.rstrip("/") for path in paths]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = [
        "pyproject.toml",
        pyproject["project"]["readme"],
        *wheel["packages"],
        *wheel.get("force-include", {}),
    ]
    for path in needed:
        assert any(path == s or path.startswith(s + "/") for s in sources), (
            f"the wheel needs {path}: the builder stage does not copy it"
        )
    # BuildKit's ignore file for this Dockerfile lets through exactly what is copied.
    ignore = DOCKERFILE.with_name("Dockerfile.dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed == set(sources), f"Dockerfile.dockerignore lets through {sorted(allowed)}"


# --------------------------------------------------------------------------- Grafana


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    exprs = []
    for panel in _panels(dashboard["panels"]):
        if panel.get("type") == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            exprs.append(target["expr"])
    return exprs


def _queried_metrics(expr: str) -> set[str]:
    names = set()
    for name in re.findall(r"stanceline_[a-z_]+", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        names.add(base if base in HISTOGRAMS else name)
    return names


def test_dashboard_queries_only_stanceline_metrics_and_all_of_them() -> None:
    queried = set().union(*(_queried_metrics(expr) for expr in _dashboard_exprs()))
    assert queried <= PROJECTOR_METRICS | HTTP_METRICS, queried - (PROJECTOR_METRICS | HTTP_METRICS)
    assert queried == PROJECTOR_METRICS | HTTP_METRICS, "no panel for " + ", ".join(
        sorted((PROJECTOR_METRICS | HTTP_METRICS) - queried)
    )
    for expr in _dashboard_exprs():
        for name in re.findall(r"stanceline_[a-z_]+_bucket", expr):
            assert expr.startswith("histogram_quantile("), expr
            assert re.sub(r"_bucket$", "", name) in HISTOGRAMS, expr


async def _exported(part: str) -> set[str]:
    _, metrics = await _get(part, "/healthz", "/metrics")
    names = set()
    for family in text_string_to_metric_families(metrics.text):
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


async def test_the_projector_exports_every_metric_the_dashboard_names() -> None:
    missing = PROJECTOR_METRICS - await _exported("projector")
    assert not missing, f"the projector's /metrics has no {sorted(missing)}"


async def test_the_read_model_exports_every_metric_the_dashboard_names() -> None:
    exported = await _exported("api")
    if not any(name.startswith("stanceline_http_") for name in exported):
        pytest.xfail("the read model's HTTP metrics are not exported yet")
    missing = HTTP_METRICS - exported
    assert not missing, f"the read model's /metrics has no {sorted(missing)}"


# --------------------------------------------------------------------------- scaling.md


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def _table(section: str) -> dict[str, list[str]]:
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows[cells[0]] = cells[1:]
    return rows


def _commit(section: str) -> str:
    found = re.search(r"\(commit ([0-9a-f]{7,40})", section)
    assert found, "no (commit ...) in the section"
    return found.group(1)


def test_scaling_guide_quotes_the_readme_figures_of_the_same_commit() -> None:
    performance = _section((ROOT / "README.md").read_text(), "## Performance")
    quoted = _section((DEPLOY / "scaling.md").read_text(), "## The figures")
    assert _commit(quoted) == _commit(performance), (
        "README.md's Performance table is from another commit: refresh deploy/scaling.md"
    )
    readme_rows = {figure: cells[-2] for figure, cells in _table(performance).items()}
    quoted_rows = _table(quoted)
    quoted_rows.pop("figure")
    assert quoted_rows
    for figure, (measured,) in quoted_rows.items():
        assert figure in readme_rows, f"scaling.md quotes `{figure}`, which the README lacks"
        assert measured == readme_rows[figure], f"{figure}: README says {readme_rows[figure]}"


def test_deploy_readme_links_the_scaling_guide() -> None:
    assert "(scaling.md)" in (DEPLOY / "README.md").read_text()


def test_deploy_readme_commands_are_real_subcommands() -> None:
    """`docker compose ... run --rm [-T] SERVICE ARGS` and `kubectl exec ... -- stanceline
    ARGS` in deploy/README.md's sh blocks."""
    services = _stanceline_services()
    blocks = re.findall(r"```sh\n(.*?)```", (DEPLOY / "README.md").read_text(), re.DOTALL)
    checked = 0
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line.split("#")[0].split("<")[0].split("|")[0])
        except ValueError:  # a quote closed on a later line (jq programs): not a command
            continue
        if "run" in words and "--rm" in words:
            rest = words[words.index("run") + 1 :]
            rest = [w for w in rest if w not in ("--rm", "-T")]
            if rest and rest[0] in services:
                _invocation(rest[1:] or services[rest[0]]["command"])
                checked += 1
        elif "--" in words and words[words.index("--") + 1 :][:1] == ["stanceline"]:
            _invocation(words[words.index("--") + 2 :])
            checked += 1
    assert checked >= 4


# --------------------------------------------------------------------------- compose config


def _compose_tool() -> list[str] | None:
    """Compose v2 (`docker compose` or `docker-compose`), which needs no engine for
    `config`; v1 is not asked (it rejects the top-level `name`)."""
    for tool in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(tool[0]) is None:
            continue
        done = subprocess.run(
            [*tool, "version"], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode == 0 and re.search(r"version v?2\.", done.stdout):
            return tool
    return None


def test_compose_config_with_the_compose_tool() -> None:
    tool = _compose_tool()
    if tool is None:
        pytest.skip("no Docker Compose v2 on this machine")
    passwords = sorted(set(re.findall(r"\$\{([A-Z_]*PASSWORD)", COMPOSE.read_text())))
    env = {**os.environ, **{name: "x" for name in passwords}}
    done = subprocess.run(
        [*tool, "-f", str(COMPOSE), "--profile", "ops", "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
