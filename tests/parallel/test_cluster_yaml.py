"""docker/cluster.yaml passes Ray's own cluster-config preparation and schema validation; the Dockerfile and
the submit script agree with it."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from raynas_tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((REPO / "docker" / "cluster.yaml").read_text())


def _validate(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))  # merges the provider's defaults, as `ray up` does
    validate_config(prepared)  # JSON schema + node-type consistency
    return prepared


def test_cluster_yaml_is_valid_for_ray(cluster: dict) -> None:
    prepared = _validate(cluster)
    types = prepared["available_node_types"]
    assert prepared["head_node_type"] == "head_cpu" and set(types) == {"head_cpu", "gpu_worker"}
    assert types["head_cpu"]["resources"] == {"GPU": 0}  # actors never land on the driver's node
    assert types["gpu_worker"]["node_config"]["InstanceType"].startswith("g")
    assert prepared["docker"]["image"] and prepared["docker"]["container_name"]
    assert "/home/ray/raynas-src" in prepared["file_mounts"]


def test_validation_catches_a_broken_config(cluster: dict) -> None:
    import jsonschema

    bad = copy.deepcopy(cluster)
    bad["head_node_type"] = "no_such_type"
    with pytest.raises(ValueError):
        _validate(bad)
    bad = copy.deepcopy(cluster)
    bad["docker"]["imagee"] = "typo"
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad)


def test_dockerfile_pins_torch_and_ray_to_the_installed_versions() -> None:
    import ray

    text = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM rayproject/ray:\$\{RAY_VERSION\}-py\d+-gpu$", text, re.M)
    assert f"ARG RAY_VERSION={ray.__version__}" in text
    assert "ARG TORCH_VERSION=2.13.0" in text and "pip install -c constraints.txt ." in text
    # the image installs the versions the suite passed with, and the file is in the build context
    assert "constraints.txt" in text.split("COPY", 1)[1].splitlines()[0]
    pins = dict(line.split(";")[0].split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert f"ARG RAY_VERSION={pins['ray']}" in text and pins["torch"] == "2.13.0"  # the image's and the pinned agree


def test_submit_script_parses_score_args() -> None:
    mod = load_script("ray_submit_search")
    args = mod.parse(["--sample", "8", "--workers", "2", "--gpus-per-worker", "0.5", "--out", "r", "--C", "4"])
    assert (args.sample, args.workers, args.gpus_per_worker, args.out, args.C) == (8, 2, 0.5, "r", 4)
