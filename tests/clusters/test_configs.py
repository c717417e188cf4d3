"""The configs in clusters/: launcher YAML through the validation `ray up` applies, KubeRay
manifests against the fields the operator requires, one Ray version everywhere."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from orchestrator.sweep.spec import parse_spec

CLUSTERS = Path(__file__).resolve().parents[2] / "clusters"
LAUNCHER_CONFIGS = ("aws.yaml", "gcp.yaml", "onprem.yaml")
RAY_VERSION = ray.__version__


def load(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((CLUSTERS / name).read_text()) if doc]


def ray_up_validation(config: dict) -> dict:
    """What `ray up` does to a config before touching a cloud: fill in the provider's defaults,
    then check the result against ray-schema.json and the launcher's own rules."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_passes_ray_up_validation(name):
    prepared = ray_up_validation(load(name)[0])
    assert prepared["cluster_name"] == "ganorch"
    assert any("ganorch" in c for c in prepared["setup_commands"])


@pytest.mark.parametrize("name", ("aws.yaml", "gcp.yaml"))
def test_cloud_configs_have_cpu_head_and_autoscaling_gpu_workers(name):
    config = load(name)[0]
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    workers = [t for n, t in types.items() if n != config["head_node_type"]]
    assert any(
        t["resources"].get("GPU", 0) >= 1 and t["min_workers"] < t["max_workers"] for t in workers
    )
    scheme = {"aws.yaml": "s3", "gcp.yaml": "gs"}[name]  # the bucket every node writes to
    assert f"GANORCH_RUNS={scheme}://GANORCH_BUCKET/" in " ".join(config["docker"]["run_options"])


def test_validation_rejects_what_ray_up_rejects():
    config = load("aws.yaml")[0]
    config["available_node_types"]["gpu_worker"]["gpus"] = 1  # not a node-type field
    with pytest.raises(jsonschema.ValidationError):
        ray_up_validation(config)
    config = load("aws.yaml")[0]
    del config["head_node_type"]
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        ray_up_validation(config)


def _containers(pod_template: dict) -> list[dict]:
    containers = pod_template["spec"]["containers"]
    assert containers and all(c.get("name") and c.get("image") for c in containers)
    return containers


def check_ray_cluster_spec(spec: dict) -> None:
    """The fields KubeRay's RayCluster CRD requires, and the shape ganorch relies on."""
    assert spec["rayVersion"] == RAY_VERSION
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    head_ports = {p["containerPort"] for p in _containers(head["template"])[0]["ports"]}
    assert {6379, 10001} <= head_ports
    assert all(
        "nvidia.com/gpu" not in c["resources"].get("limits", {})
        for c in _containers(head["template"])
    )
    groups = spec["workerGroupSpecs"]
    assert groups
    for group in groups:
        assert group["groupName"] and isinstance(group["rayStartParams"], dict)
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        _containers(group["template"])
    gpu_limits = [
        c["resources"]["limits"].get("nvidia.com/gpu")
        for g in groups
        for c in _containers(g["template"])
    ]
    assert any(int(limit or 0) >= 1 for limit in gpu_limits)
    assert any(g["minReplicas"] < g["maxReplicas"] for g in groups)  # room to autoscale
    assert spec["enableInTreeAutoscaling"] is True


def test_kuberay_cluster_manifest():
    [cluster] = load("kuberay-cluster.yaml")
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert cluster["metadata"]["name"]
    check_ray_cluster_spec(cluster["spec"])


def test_kuberay_job_runs_a_valid_spec_from_its_configmap():
    docs = {doc["kind"]: doc for doc in load("kuberay-job.yaml")}
    job, config_map = docs["RayJob"], docs["ConfigMap"]
    assert job["apiVersion"] == "ray.io/v1" and job["metadata"]["name"]
    check_ray_cluster_spec(job["spec"]["rayClusterSpec"])
    entrypoint = job["spec"]["entrypoint"].split()
    assert entrypoint[:3] == ["ganorch", "sweep", "run"] and "--address" in entrypoint
    spec_path = Path(entrypoint[3])
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    volume = next(v for v in head["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert mounts[volume["name"]] == str(spec_path.parent)
    spec = parse_spec(yaml.safe_load(config_map["data"][spec_path.name]))
    assert spec.resources.gpu > 0 and spec.max_failures > 0


def test_one_ray_version_everywhere():
    """Every config names the installed Ray, which the pyproject bounds admit."""
    texts = {p.name: p.read_text() for p in CLUSTERS.iterdir() if p.is_file()}
    found = {
        name: set(
            re.findall(r"ray(?:\[tune\])?[:=]=?(\d+\.\d+\.\d+)", text)
            + re.findall(r"rayVersion: \"(\d+\.\d+\.\d+)\"", text)
            + re.findall(r"ray(\d+\.\d+\.\d+)", text)
        )
        for name, text in texts.items()
    }
    for name in (*LAUNCHER_CONFIGS, "kuberay-cluster.yaml", "kuberay-job.yaml", "Dockerfile"):
        assert found[name] == {RAY_VERSION}, (name, found[name])
    pyproject = tomllib.loads((CLUSTERS.parent / "pyproject.toml").read_text())
    [bound] = [d for d in pyproject["project"]["dependencies"] if d.startswith("ray")]
    low, high = re.search(r">=([\d.]+),<([\d.]+)", bound).groups()
    version = tuple(map(int, RAY_VERSION.split(".")))
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split(".")))
