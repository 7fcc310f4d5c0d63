"""deploy/kubernetes, deploy/Containerfile and the systemd unit. The manifests are valid
Kubernetes objects (the API's own JSON schemas, strict); they agree with each other and
with the image; the daemon accepts the config the pods get and answers the probes and the
scrape the manifests point at; systemd-analyze finds nothing wrong with the unit.
(scripts/check-container-runtime runs the image's runtime stage itself; it needs root and
Debian's mirror, so it is not part of this suite.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests
import yaml

import support

DEPLOY = support.REPO_ROOT / "deploy"
K8S = DEPLOY / "kubernetes"


def kustomization() -> Dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def objects() -> List[Dict[str, Any]]:
    """Every object the kustomization lists, in order."""
    out = []
    for name in kustomization()["resources"]:
        out += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return out


def one(kind: str, name: str) -> Dict[str, Any]:
    found = [o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def generated(name: str) -> Dict[str, Any]:
    """A configMapGenerator entry's single file, parsed, with the key it is mounted under."""
    entries = [g for g in kustomization()["configMapGenerator"] if g["name"] == name]
    assert len(entries) == 1, name
    files = entries[0]["files"]
    assert len(files) == 1, files
    return {"key": files[0], "content": yaml.safe_load((K8S / files[0]).read_text())}


def container(workload: Dict[str, Any]) -> Dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def ports(c: Dict[str, Any]) -> Dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c["ports"]}


def listen_port(address: str) -> int:
    m = re.fullmatch(r"0\.0\.0\.0:(\d+)", address)
    assert m, f"{address!r}: a pod must listen on all its interfaces"
    return int(m.group(1))


def containerfile() -> str:
    return (DEPLOY / "Containerfile").read_text()


# --------------------------------------------------------------------------------------
# Static agreement.
# --------------------------------------------------------------------------------------

def test_every_manifest_is_a_valid_kubernetes_object_and_the_kustomization_lists_them_all():
    import kubernetes_validate
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    version = max((tuple(int(x) for x in p.name[1:].split("-")[0].split(".")) for p in schemas.glob("v*-local-strict")))
    listed = set(kustomization()["resources"])
    generated_files = {f for g in kustomization()["configMapGenerator"] for f in g["files"]}
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed | generated_files == on_disk, "a manifest not in kustomization.yaml is never applied"
    kinds = []
    for o in objects():
        kubernetes_validate.validate(o, ".".join(map(str, version)), strict=True)
        kinds.append(o["kind"])
    assert sorted(kinds) == ["Deployment", "Namespace", "PodDisruptionBudget", "Service", "Service", "StatefulSet"], kinds
    # The validator is strict: a misspelt field fails.
    bad = json.loads(json.dumps(one("StatefulSet", "spanledger")))
    container(bad)["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, ".".join(map(str, version)), strict=True)


def test_the_nodes_config_listeners_ports_probes_and_volumes_agree():
    sts = one("StatefulSet", "spanledger")
    c = container(sts)
    config = generated("spanledger-config")
    cfg = config["content"]
    # The container runs serve with the generated config, mounted where --config looks.
    assert c["image"] == "spanledger" and c["args"][:2] == ["serve", "--config"], c["args"]
    config_path = Path(c["args"][2])
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert mounts["config"]["mountPath"] == str(config_path.parent) and config_path.name == config["key"]
    assert volumes["config"]["configMap"]["name"] == "spanledger-config"
    # The data directory is the per-pod volume.
    assert mounts["data"]["mountPath"] == cfg["data"]
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    # Listeners on all interfaces, on the ports the container declares.
    assert ports(c) == {"otlp-grpc": listen_port(cfg["otlp_grpc"]), "otlp-http": listen_port(cfg["otlp_http"]),
                        "api": listen_port(cfg["api"])}
    # Probes and the scrape go to the API listener.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "api"}, probe
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports(c)["api"] and annotations["prometheus.io/path"] == "/metrics"
    # The image's user, on a read-only root: the daemon writes only to its data volume.
    user = re.search(r"^USER (\d+):(\d+)$", containerfile(), re.M)
    pod_security = sts["spec"]["template"]["spec"]["securityContext"]
    assert (pod_security["runAsUser"], pod_security["runAsGroup"], pod_security["fsGroup"]) == (int(user[1]), int(user[2]), int(user[2]))
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # Long enough for the graceful stop the systemd unit also waits for.
    unit = (DEPLOY / "spanledger.service").read_text()
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)[1])


def test_the_gateway_routes_each_trace_to_one_node_found_through_the_headless_service():
    sts = one("StatefulSet", "spanledger")
    headless = one("Service", sts["spec"]["serviceName"])
    namespace = kustomization()["namespace"]
    assert one("Namespace", namespace)
    # Headless: DNS lists every ready node's address, which is what the resolver spreads over.
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"] == sts["spec"]["template"]["metadata"]["labels"]
    node_ports = ports(container(sts))
    for p in headless["spec"]["ports"]:
        assert node_ports[p["targetPort"]] == p["port"], p
    gw_cfg = generated("spanledger-gateway-config")["content"]
    lb = gw_cfg["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "traceID", "each trace must land on one node"
    dns = lb["resolver"]["dns"]
    assert dns["hostname"] == f"{headless['metadata']['name']}.{namespace}.svc.cluster.local"
    assert dns["port"] == node_ports["otlp-grpc"], "the gateway exports OTLP/gRPC to the nodes"
    assert gw_cfg["service"]["pipelines"]["traces"] == {"receivers": ["otlp"], "exporters": ["loadbalancing"]}
    # The gateway's Deployment: its config, its receivers behind its Service, its health probes.
    gw = one("Deployment", "spanledger-gateway")
    gc = container(gw)
    config_key = generated("spanledger-gateway-config")["key"]
    mount = {m["name"]: m for m in gc["volumeMounts"]}["config"]
    assert gc["args"] == [f"--config={mount['mountPath']}/{config_key}"]
    assert gw["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "spanledger-gateway-config"
    receivers = gw_cfg["receivers"]["otlp"]["protocols"]
    gp = ports(gc)
    assert (listen_port(receivers["grpc"]["endpoint"]), listen_port(receivers["http"]["endpoint"])) == (gp["otlp-grpc"], gp["otlp-http"])
    assert listen_port(gw_cfg["extensions"]["health_check"]["endpoint"]) == gp["health"]
    assert gc["readinessProbe"]["httpGet"]["port"] == gc["livenessProbe"]["httpGet"]["port"] == "health"
    service = one("Service", "spanledger-gateway")
    assert service["spec"]["selector"] == gw["spec"]["template"]["metadata"]["labels"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"otlp-grpc", "otlp-http"}
    # The disruption budget covers the nodes.
    assert one("PodDisruptionBudget", "spanledger")["spec"]["selector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]


def test_the_image_runs_serve_on_its_volume_listening_on_the_ports_it_exposes():
    text = containerfile()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M)[1])
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)[1])
    exposed = sorted(int(p) for p in re.search(r"^EXPOSE (.*)$", text, re.M)[1].split())
    volume = json.loads(re.search(r"^VOLUME (\[.*\])$", text, re.M)[1])
    assert entry == ["/usr/local/bin/spanledger"] and cmd[0] == "serve"
    flags = dict(zip(cmd[1::2], cmd[2::2]))
    assert flags["--data"] == volume[0] == "/var/lib/spanledger"
    assert sorted(listen_port(flags[f]) for f in ("--otlp-grpc", "--otlp-http", "--api")) == exposed
    # The same ports as the daemon's defaults, which the README documents.
    help_text = " ".join(support.cli("serve", "--help").stdout.decode().split())
    for flag in ("--otlp-grpc", "--otlp-http", "--api"):
        default = re.search(re.escape(flag) + r" <[^>]+> [^()]*\(default:? ([^)]+)\)", help_text)
        assert default and default[1].endswith(":" + flags[flag].rsplit(":", 1)[1]), (flag, default and default[1])
    # The pods' config listens where the image does.
    cfg = generated("spanledger-config")["content"]
    assert {cfg["otlp_grpc"], cfg["otlp_http"], cfg["api"]} == {flags["--otlp-grpc"], flags["--otlp-http"], flags["--api"]}
    # The runtime stage installs what the build stage's headers were for.
    packages = re.search(r'^ARG RUNTIME_PACKAGES="([^"]+)"$', text, re.M)[1].split()
    for lib in ("libprotobuf-c1", "zlib1g", "libtcmalloc-minimal4", "libcurl4"):
        assert lib in packages, lib
    assert "--static-swift-stdlib" in text
    # The build stage copies every folder a target of Package.swift lives in: a package with
    # a target folder missing does not load, even to build one product.
    build_stage = text.split("FROM ${SWIFT_IMAGE} AS build", 1)[1].split("\nFROM ", 1)[0]
    copied = {src.rstrip("/") for line in re.findall(r"^COPY (?!--from)(.+)$", build_stage, re.M) for src in line.split()[:-1]}
    described = subprocess.run(["swift", "package", "--package-path", str(support.REPO_ROOT), "describe", "--type", "json"],
                               capture_output=True, text=True, timeout=300)
    assert described.returncode == 0, described.stderr[-2000:]
    folders = {t["path"].split("/")[0] for t in json.loads(described.stdout)["targets"]}
    assert folders and folders | {"Package.swift"} <= copied, (sorted(folders), sorted(copied))


# --------------------------------------------------------------------------------------
# The real daemon on the pods' config.
# --------------------------------------------------------------------------------------

def test_the_daemon_accepts_the_pods_config_and_answers_the_probes_and_the_scrape(daemon_factory):
    sts = one("StatefulSet", "spanledger")
    c = container(sts)
    config_file = K8S / generated("spanledger-config")["key"]
    # The pods' config, with the listeners and data directory moved to this test's (flags win).
    d = daemon_factory.start("pod", extra_args=["--config", str(config_file)])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        r = requests.get(d.api_url + c[probe]["httpGet"]["path"], timeout=10)
        assert r.status_code == 200, (probe, r.status_code)
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    scrape = requests.get(d.api_url + annotations["prometheus.io/path"], timeout=10)
    assert scrape.status_code == 200 and "spanledger_spans_received_total" in scrape.text
    # A config key the daemon does not know fails the start, so the check above means something.
    bad = daemon_factory.tmp / "bad-config.yaml"
    bad.write_text(config_file.read_text() + "\notlp_grcp: 0.0.0.0:4317\n")
    p = subprocess.run([str(support.spanledger_bin()), "serve", "--config", str(bad), "--data", str(daemon_factory.tmp / "bad-data"),
                        "--otlp-http", "127.0.0.1:0", "--api", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "otlp_grcp" in p.stderr, (p.returncode, p.stderr[-500:])


def test_the_systemd_unit_verifies_cleanly():
    """deploy/spanledger.service as systemd reads it (`systemd-analyze verify`: unknown keys,
    bad values, a missing command), with ExecStart pointed at this build's binary."""
    import shutil
    import tempfile
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd, scripts/install-deps) is needed"
    unit = (DEPLOY / "spanledger.service").read_text()
    assert "ExecStart=/usr/local/bin/spanledger serve " in unit
    with tempfile.TemporaryDirectory() as d:
        def verify(text: str) -> subprocess.CompletedProcess:
            path = Path(d) / "spanledger.service"
            path.write_text(text.replace("/usr/local/bin/spanledger", str(support.spanledger_bin())))
            return subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60)
        ok = verify(unit)
        assert ok.returncode == 0 and ok.stderr.strip() == "", ok.stderr
        # What it reports is what fails here: a misspelt key.
        bad = verify(unit.replace("KillSignal=SIGTERM", "KillSignal=SIGTERM\nTimeoutStopSecs=60"))
        assert "TimeoutStopSecs" in bad.stderr, bad.stderr
