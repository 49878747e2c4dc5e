"""Validates kustomize renders of deploy/kubernetes (called by scripts/check-kubernetes).

    python check-kubernetes.py NAME=RENDER.yaml ...     # validate each render
    python check-kubernetes.py --self-test RENDER.yaml  # break a render, see every check fire
    python check-kubernetes.py --self-test=RENDER.yaml NAME=RENDER.yaml ...   # both

Two layers:
- schema: every built-in object against the Kubernetes OpenAPI schemas shipped by the
  `kubernetes-validate` package (strict: an unknown field is an error), for the oldest
  Kubernetes the docs support and the newest the package knows;
- the fleet's own rules, which no schema knows: probes on the port METRICS_ADDR names,
  every Secret and ConfigMap key referenced exists, selectors select, the KEDA objects
  (no schema here: checked field by field) scale the worker Deployment on the queues
  that BACKFILL_NAMESPACE names, the termination grace exceeds --shutdown-grace-s, and
  every flag given to `backfill` is one that cli/src/args/ defines.
"""

from __future__ import annotations

import copy
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OLDEST_KUBERNETES = "1.29"

# Created by the operator, not rendered (docs/kubernetes.md): name -> keys (None: any).
EXTERNAL = {
    ("Secret", "backfill-secrets"): {
        "AMQP_URL",
        "AMQP_SCALER_URL",
        "LEDGER_URL",
        "DATABRICKS_TOKEN",
    },
    ("ConfigMap", "backfill-dq-policy"): None,
}
# Settings that are credentials: only ever from a Secret.
SECRET_SETTINGS = {"AMQP_URL", "AMQP_SCALER_URL", "LEDGER_URL", "DATABRICKS_TOKEN"}
# What each subcommand reads from the environment, at least.
NEEDS = {
    "worker": {"AMQP_URL", "LEDGER_URL", "DATABRICKS_HOST", "DATABRICKS_TOKEN",
               "BACKFILL_NAMESPACE", "METRICS_ADDR"},
    "reconcile": {"LEDGER_URL", "DATABRICKS_HOST", "DATABRICKS_TOKEN", "METRICS_ADDR"},
    "produce": {"AMQP_URL", "LEDGER_URL", "DATABRICKS_HOST", "DATABRICKS_TOKEN",
                "BACKFILL_NAMESPACE"},
    "sim": {"METRICS_ADDR"},
}
# Subcommands that serve /metrics, /healthz and /readyz for as long as they run.
SERVES = {"worker", "reconcile", "sim"}
# Subcommands that use the broker, so must agree on the namespace.
BROKER = {"worker", "produce"}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
KEDA_SCALED_OBJECT_KEYS = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced",
    "triggers"}
KEDA_TRIGGER_KEYS = {"type", "name", "metadata", "authenticationRef", "metricType",
                     "useCachedMetrics"}
KEDA_RABBITMQ_KEYS = {"host", "hostFromEnv", "protocol", "mode", "value", "activationValue",
                      "queueName", "vhostName", "useRegex", "excludeUnacknowledged",
                      "pageSize", "operation", "timeout", "unsafeSsl"}
KEDA_SECRET_TARGET_KEYS = {"parameter", "name", "key"}


def cli_flags() -> dict[str, set[str]]:
    """Long flags per subcommand, read from cli/src/args/ (fields of `#[derive(Args)]`
    structs with `long`, `#[command(flatten)]` followed, global options for all)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "cli/src/args").glob("*.rs")))
    structs: dict[str, tuple[set[str], list[str]]] = {}
    for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
        flags: set[str] = set()
        flattened: list[str] = []
        attrs: list[str] = []
        for line in m.group(2).splitlines():
            line = line.strip()
            if line.startswith("#["):
                attrs.append(line)
                continue
            if line.startswith("///") or not line:
                continue
            field = re.match(r"pub (\w+): (?:Box<)?(?:Option<)?(\w+)", line)
            joined = " ".join(attrs)
            if field and "flatten" in joined:
                flattened.append(field.group(2))
            elif field and re.search(r"\blong\b", joined):
                named = re.search(r'long = "([\w-]+)"', joined)
                flags.add(named.group(1) if named else field.group(1).replace("_", "-"))
            if line.endswith(",") or field:
                attrs = []
        structs[m.group(1)] = (flags, flattened)

    def resolve(name: str) -> set[str]:
        flags, flattened = structs[name]
        out = set(flags)
        for inner in flattened:
            out |= resolve(inner)
        return out

    common = resolve("GlobalOpts") | {"help"}
    return {
        "worker": resolve("WorkerArgs") | common,
        "reconcile": resolve("ReconcileArgs") | common,
        "produce": resolve("ProduceArgs") | common,
        "sim": resolve("SimArgs") | common,
    }


def quantity(value) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    text = str(value)
    for unit, factor in units.items():
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * factor
    return float(text)


def flag_values(args: list[str]) -> dict[str, str]:
    """--name=value and --name value pairs (a bare --name maps to "")."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = str(args[i])
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg[2:].split("=", 1)
            elif i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
                name, value = arg[2:], str(args[i + 1])
                i += 1
            else:
                name, value = arg[2:], ""
            out[name] = value
        i += 1
    return out


class Render:
    def __init__(self, name: str, docs: list[dict], flags: dict[str, set[str]]):
        self.name = name
        self.docs = docs
        self.flags = flags
        self.errors: list[str] = []

    def error(self, obj: dict | None, message: str) -> None:
        where = f"{obj['kind']}/{obj['metadata']['name']}: " if obj else ""
        self.errors.append(f"{self.name}: {where}{message}")

    def find(self, kind: str, name: str) -> dict | None:
        for doc in self.docs:
            if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
                return doc
        return None

    def keys_of(self, kind: str, name: str) -> set[str] | None | bool:
        """The keys of a ConfigMap or Secret: rendered, declared external, or False."""
        doc = self.find(kind, name)
        if doc is not None:
            return set(doc.get("data") or {}) | set(doc.get("stringData") or {}) | set(
                doc.get("binaryData") or {})
        if (kind, name) in EXTERNAL:
            return EXTERNAL[(kind, name)]
        return False

    # -- layer 1: schemas ------------------------------------------------------------

    def check_schemas(self) -> int:
        import kubernetes_validate
        from kubernetes_validate import utils

        versions = [OLDEST_KUBERNETES, utils.latest_version()]
        checked = 0
        for doc in self.docs:
            if doc.get("apiVersion", "").startswith("keda.sh/"):
                continue  # no schema in the package: see check_keda
            for version in versions:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                    checked += 1
                except utils.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    self.error(doc, f"Kubernetes {version} schema: {path}: {e.message}")
                except utils.SchemaNotFoundError:
                    self.error(doc, f"no Kubernetes {version} schema for {doc['apiVersion']}")
        return checked

    # -- layer 2: the fleet's rules --------------------------------------------------

    def check(self) -> None:
        seen = set()
        namespaces = set()
        for doc in self.docs:
            for field in ("apiVersion", "kind", "metadata"):
                if field not in doc:
                    self.errors.append(f"{self.name}: an object without {field}")
                    return
            key = (doc["kind"], doc["metadata"].get("name"))
            if key in seen:
                self.error(doc, "defined twice")
            seen.add(key)
            namespaces.add(doc["metadata"].get("namespace"))
        if len(namespaces) > 1:
            self.error(None, f"objects in several namespaces: {sorted(map(str, namespaces))}")
        for doc in self.docs:
            if doc["kind"] == "ConfigMap":
                self.check_config_map(doc)
        pods = [d for d in self.docs if d["kind"] in POD_KINDS]
        broker_namespaces: dict[str, str] = {}
        for doc in pods:
            self.check_workload(doc, broker_namespaces)
        if len(set(broker_namespaces.values())) > 1:
            self.error(None, f"producer and workers use different BACKFILL_NAMESPACEs: "
                             f"{broker_namespaces}")
        self.check_selectors(pods)
        scaled = [d for d in self.docs if d["kind"] == "ScaledObject"]
        for doc in scaled:
            self.check_scaled_object(doc)
        for doc in self.docs:
            if doc["kind"] == "TriggerAuthentication":
                self.check_trigger_authentication(doc)
            if doc["kind"] == "PodDisruptionBudget":
                self.check_pdb(doc, pods)
            if doc["kind"] == "Service":
                self.check_service(doc, pods)
            if doc["kind"] == "HorizontalPodAutoscaler":
                target = doc["spec"]["scaleTargetRef"]["name"]
                if any(s["spec"]["scaleTargetRef"]["name"] == target for s in scaled):
                    self.error(doc, f"scales {target}, which a ScaledObject already scales")
        workers = [d for d in pods if self.subcommand(d) == "worker"]
        if not workers:
            self.error(None, "no worker Deployment")
        for worker in workers:
            if not any(s["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
                       for s in scaled):
                self.error(worker, "no ScaledObject scales it")
            if not any(d["kind"] == "PodDisruptionBudget" for d in self.docs):
                self.error(worker, "no PodDisruptionBudget")

    def check_config_map(self, doc: dict) -> None:
        for key, value in (doc.get("data") or {}).items():
            if key in SECRET_SETTINGS or re.search(r"TOKEN|PASSWORD|SECRET", key):
                self.error(doc, f"{key} is a credential: it belongs in a Secret")
            if re.search(r"://[^/@\s]+:[^/@\s]*@", str(value)):
                self.error(doc, f"{key} holds a URL with a password: it belongs in a Secret")

    @staticmethod
    def pod_spec(doc: dict) -> dict:
        return doc["spec"]["template"]["spec"]

    @staticmethod
    def template_labels(doc: dict) -> dict:
        return doc["spec"]["template"]["metadata"].get("labels") or {}

    def subcommand(self, doc: dict) -> str | None:
        for c in self.pod_spec(doc)["containers"]:
            if c.get("command", [None])[0] == "backfill" and c.get("args"):
                return str(c["args"][0])
        return None

    def environment(self, doc: dict, container: dict) -> dict[str, tuple[str, str | None]]:
        """Variable -> (where from: value|configmap|secret, value when known)."""
        env: dict[str, tuple[str, str | None]] = {}
        for source in container.get("envFrom") or []:
            for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if field not in source:
                    continue
                name = source[field]["name"]
                keys = self.keys_of(kind, name)
                if keys is False:
                    if not source[field].get("optional"):
                        self.error(doc, f"envFrom {kind} {name} does not exist")
                    continue
                rendered = self.find(kind, name)
                for key in keys or []:
                    value = (rendered.get("data") or {}).get(key) if rendered else None
                    env[source.get("prefix", "") + key] = (kind.lower(), value
                                                            if kind == "ConfigMap" else None)
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = ("value", str(var["value"]))
                continue
            ref = var.get("valueFrom") or {}
            for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if field not in ref:
                    continue
                name, key = ref[field]["name"], ref[field]["key"]
                keys = self.keys_of(kind, name)
                optional = ref[field].get("optional")
                if keys is False and not optional:
                    self.error(doc, f"{var['name']}: {kind} {name} does not exist")
                elif keys and key not in keys and not optional:
                    self.error(doc, f"{var['name']}: {kind} {name} has no key {key}")
                rendered = self.find(kind, name)
                value = ((rendered.get("data") or {}).get(key)
                         if rendered and kind == "ConfigMap" else None)
                env[var["name"]] = (kind.lower(), value)
        return env

    def check_workload(self, doc: dict, broker_namespaces: dict[str, str]) -> None:
        spec = self.pod_spec(doc)
        pod_security = spec.get("securityContext") or {}
        for volume in spec.get("volumes") or []:
            for kind, field, name_field in (("ConfigMap", "configMap", "name"),
                                            ("Secret", "secret", "secretName")):
                if field in volume:
                    name = volume[field][name_field]
                    keys = self.keys_of(kind, name)
                    if keys is False and not volume[field].get("optional"):
                        self.error(doc, f"volume {volume['name']}: {kind} {name} does not exist")
                    for item in volume[field].get("items") or []:
                        if keys and item["key"] not in keys:
                            self.error(doc, f"volume {volume['name']}: {kind} {name} has no "
                                            f"key {item['key']}")
        if spec.get("enableServiceLinks") is not False:
            self.error(doc, "enableServiceLinks must be false (the CLI reads its settings "
                            "from the environment)")
        if doc["kind"] == "Job":
            if spec.get("restartPolicy") not in ("Never", "OnFailure"):
                self.error(doc, "a Job's restartPolicy must be Never or OnFailure")
            names = {c["name"] for c in spec["containers"]}
            for rule in (doc["spec"].get("podFailurePolicy") or {}).get("rules", []):
                container = (rule.get("onExitCodes") or {}).get("containerName")
                if container and container not in names:
                    self.error(doc, f"podFailurePolicy names container {container}, "
                                    f"which does not exist")
        for c in spec["containers"]:
            self.check_container(doc, spec, pod_security, c, broker_namespaces)

    def check_container(self, doc, spec, pod_security, c, broker_namespaces) -> None:
        label = f"container {c['name']}"
        if not c.get("image"):
            self.error(doc, f"{label}: no image")
        elif not str(c["image"]).split("/")[-1].startswith("backfill-fleet"):
            self.error(doc, f"{label}: image {c['image']} is not backfill-fleet "
                            f"(the Dockerfile's and compose's)")
        resources = c.get("resources") or {}
        for kind in ("cpu", "memory"):
            request = (resources.get("requests") or {}).get(kind)
            limit = (resources.get("limits") or {}).get(kind)
            if request is None or limit is None:
                self.error(doc, f"{label}: {kind} request and limit are both required")
            elif quantity(request) > quantity(limit):
                self.error(doc, f"{label}: {kind} request {request} above its limit {limit}")
        security = c.get("securityContext") or {}
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            self.error(doc, f"{label}: runAsNonRoot is not set")
        uid = security.get("runAsUser", pod_security.get("runAsUser"))
        if not isinstance(uid, int) or uid == 0:
            self.error(doc, f"{label}: runAsUser must be a non-zero number (the image's user "
                            f"is a name, which runAsNonRoot cannot verify)")
        if security.get("readOnlyRootFilesystem") is not True:
            self.error(doc, f"{label}: the root filesystem is not read-only")
        if security.get("allowPrivilegeEscalation") is not False:
            self.error(doc, f"{label}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            self.error(doc, f"{label}: capabilities are not all dropped")

        env = self.environment(doc, c)
        if c.get("command", [None])[0] != "backfill":
            self.error(doc, f"{label}: the command is not backfill")
            return
        args = [str(a) for a in c.get("args") or []]
        sub = args[0] if args else None
        if sub not in NEEDS:
            self.error(doc, f"{label}: unexpected subcommand {sub}")
            return
        given = flag_values(args[1:])
        for flag in given:
            if flag not in self.flags[sub]:
                self.error(doc, f"{label}: `backfill {sub}` has no flag --{flag} "
                                f"(cli/src/args/)")
        for var in sorted(NEEDS[sub] - set(env)):
            flag = var.lower().replace("_", "-")
            if flag not in given:
                self.error(doc, f"{label}: {var} is not set")
        for var in SECRET_SETTINGS & set(env):
            if env[var][0] != "secret":
                self.error(doc, f"{label}: {var} comes from a {env[var][0]}, not a Secret")
        if sub in BROKER:
            namespace = given.get("namespace") or (env.get("BACKFILL_NAMESPACE") or (0, None))[1]
            broker_namespaces[doc["metadata"]["name"]] = namespace or "backfill"

        metrics = given.get("metrics-addr") or (env.get("METRICS_ADDR") or (0, None))[1]
        if sub in SERVES:
            self.check_serving(doc, c, label, metrics)
        if sub == "worker":
            grace = int(given.get("shutdown-grace-s", "20"))
            if "shutdown-grace-s" not in given:
                self.error(doc, f"{label}: give --shutdown-grace-s explicitly")
            pod_grace = spec.get("terminationGracePeriodSeconds", 30)
            if not isinstance(pod_grace, int) or pod_grace <= grace:
                self.error(doc, f"terminationGracePeriodSeconds {pod_grace} is not above "
                                f"--shutdown-grace-s {grace}: the kubelet would kill the "
                                f"worker mid-drain")
        if sub == "reconcile":
            if "backfill-id" not in given:
                self.error(doc, f"{label}: the reconciler needs --backfill-id")
            if "once" in given:
                self.error(doc, f"{label}: --once exits after one pass; the service polls")
        if sub == "produce":
            for flag in ("backfill-id", "job-id", "start", "end"):
                if flag not in given:
                    self.error(doc, f"{label}: produce needs --{flag}")

    def check_serving(self, doc, c, label, metrics) -> None:
        if not metrics:
            self.error(doc, f"{label}: METRICS_ADDR is not set: no probes can answer")
            return
        host, _, port = metrics.rpartition(":")
        if host in ("127.0.0.1", "localhost", "[::1]"):
            self.error(doc, f"{label}: METRICS_ADDR {metrics} is loopback: the kubelet and "
                            f"Prometheus cannot reach it")
        port = int(port)
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
        if port not in ports.values():
            self.error(doc, f"{label}: no containerPort {port} (METRICS_ADDR)")
        wanted = {"livenessProbe": "/healthz", "readinessProbe": "/readyz",
                  "startupProbe": "/healthz"}
        for probe, path in wanted.items():
            spec = c.get(probe)
            if spec is None:
                if probe != "startupProbe":
                    self.error(doc, f"{label}: no {probe}")
                continue
            http = spec.get("httpGet") or {}
            probe_port = http.get("port")
            probe_port = ports.get(probe_port) if isinstance(probe_port, str) else probe_port
            if http.get("path") != path or probe_port != port:
                self.error(doc, f"{label}: {probe} must GET {path} on {port} "
                                f"(metrics/src/server.rs), not {http.get('path')} on "
                                f"{http.get('port')}")
        annotations = doc["spec"]["template"]["metadata"].get("annotations") or {}
        labels = self.template_labels(doc)
        if labels.get("app.kubernetes.io/part-of") != "backfill-fleet" or not labels.get(
                "app.kubernetes.io/component"):
            self.error(doc, "the pod template lacks app.kubernetes.io/part-of=backfill-fleet "
                            "or app.kubernetes.io/component, which the scrape config "
                            "(deploy/prometheus/kubernetes.yml) keeps and names jobs by")
        if annotations.get("prometheus.io/scrape") != "true":
            self.error(doc, "the pod template has no prometheus.io/scrape annotation")
        else:
            if annotations.get("prometheus.io/port") != str(port):
                self.error(doc, f"prometheus.io/port is {annotations.get('prometheus.io/port')},"
                                f" METRICS_ADDR says {port}")
            if annotations.get("prometheus.io/path", "/metrics") != "/metrics":
                self.error(doc, "prometheus.io/path is not /metrics")

    def check_selectors(self, pods: list[dict]) -> None:
        for doc in pods:
            if doc["kind"] == "Job":
                continue
            match = doc["spec"].get("selector", {}).get("matchLabels") or {}
            labels = self.template_labels(doc)
            if not match:
                self.error(doc, "no selector.matchLabels")
            elif any(labels.get(k) != v for k, v in match.items()):
                self.error(doc, f"selector {match} does not select its own template "
                                f"{labels}")
            for other in pods:
                if other is doc:
                    continue
                theirs = self.template_labels(other)
                if match and all(theirs.get(k) == v for k, v in match.items()):
                    self.error(doc, f"selector also selects the pods of "
                                    f"{other['kind']}/{other['metadata']['name']}")

    def check_scaled_object(self, doc: dict) -> None:
        if doc["apiVersion"] != "keda.sh/v1alpha1":
            self.error(doc, f"apiVersion {doc['apiVersion']} (KEDA 2 serves keda.sh/v1alpha1)")
        spec = doc.get("spec") or {}
        for key in set(spec) - KEDA_SCALED_OBJECT_KEYS:
            self.error(doc, f"unknown field spec.{key}")
        ref = spec.get("scaleTargetRef") or {}
        target = None
        if ref.get("kind", "Deployment") != "Deployment" or ref.get(
                "apiVersion", "apps/v1") != "apps/v1":
            self.error(doc, "scaleTargetRef must be an apps/v1 Deployment")
        else:
            target = self.find("Deployment", ref.get("name"))
            if target is None:
                self.error(doc, f"scaleTargetRef names Deployment {ref.get('name')}, which "
                                f"is not rendered")
            elif self.subcommand(target) != "worker":
                self.error(doc, f"scales {ref.get('name')}, which does not run `backfill "
                                f"worker`")
            elif "replicas" in target["spec"]:
                self.error(target, "sets replicas, which the ScaledObject owns (every apply "
                                   "would reset the count)")
        low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount")
        if not isinstance(low, int) or not isinstance(high, int):
            self.error(doc, "minReplicaCount and maxReplicaCount must both be set: the upper "
                            "bound keeps the API budget and the caps meaningful")
        elif not 0 <= low <= high:
            self.error(doc, f"replica bounds {low}..{high} are not 0 <= min <= max")
        elif low < 1:
            self.error(doc, "minReplicaCount 0 leaves running runs without a worker to follow "
                            "them until the check queue wakes the scaler")
        namespace = "backfill"
        if target is not None:
            for c in self.pod_spec(target)["containers"]:
                env = self.environment(target, c)
                given = flag_values([str(a) for a in (c.get("args") or [])[1:]])
                namespace = (given.get("namespace") or (env.get("BACKFILL_NAMESPACE")
                             or (0, None))[1] or "backfill")
        queues = set()
        triggers = spec.get("triggers") or []
        if not triggers:
            self.error(doc, "no triggers")
        for i, trigger in enumerate(triggers):
            where = f"trigger {trigger.get('name', i)}"
            for key in set(trigger) - KEDA_TRIGGER_KEYS:
                self.error(doc, f"{where}: unknown field {key}")
            if trigger.get("type") != "rabbitmq":
                self.error(doc, f"{where}: type {trigger.get('type')}, not rabbitmq")
                continue
            meta = trigger.get("metadata") or {}
            for key in set(meta) - KEDA_RABBITMQ_KEYS:
                self.error(doc, f"{where}: unknown rabbitmq setting {key}")
            for key, value in meta.items():
                if not isinstance(value, str):
                    self.error(doc, f"{where}: metadata.{key} must be a string, not "
                                    f"{type(value).__name__}")
            if meta.get("mode") != "QueueLength":
                self.error(doc, f"{where}: mode {meta.get('mode')}, not QueueLength")
            if meta.get("protocol", "auto") not in ("amqp", "auto"):
                self.error(doc, f"{where}: protocol {meta.get('protocol')}: the Secret holds "
                                f"an AMQP URL")
            if not re.fullmatch(r"[1-9][0-9]*", str(meta.get("value", ""))):
                self.error(doc, f"{where}: value {meta.get('value')!r} is not a positive "
                                f"whole number of messages")
            if "host" in meta:
                self.error(doc, f"{where}: host in plain metadata; read it from the Secret "
                                f"through a TriggerAuthentication")
            queues.add(meta.get("queueName"))
            auth = trigger.get("authenticationRef") or {}
            kind = auth.get("kind", "TriggerAuthentication")
            if not auth.get("name"):
                self.error(doc, f"{where}: no authenticationRef")
            elif self.find(kind, auth["name"]) is None:
                self.error(doc, f"{where}: {kind} {auth['name']} is not rendered")
            else:
                params = {t.get("parameter") for t in
                          (self.find(kind, auth["name"])["spec"].get("secretTargetRef") or [])}
                if "host" not in params and "hostFromEnv" not in meta:
                    self.error(doc, f"{where}: {kind} {auth['name']} gives no host")
        wanted = {f"{namespace}.trigger", f"{namespace}.check"}
        if queues != wanted:
            self.error(doc, f"scales on queues {sorted(map(str, queues))}, but the workers' "
                            f"BACKFILL_NAMESPACE {namespace} names the work queues "
                            f"{sorted(wanted)} (broker/src/topology.rs)")

    def check_trigger_authentication(self, doc: dict) -> None:
        refs = (doc.get("spec") or {}).get("secretTargetRef") or []
        if not refs:
            self.error(doc, "no secretTargetRef")
        for ref in refs:
            for key in set(ref) - KEDA_SECRET_TARGET_KEYS:
                self.error(doc, f"secretTargetRef: unknown field {key}")
            if ref.get("key") == "AMQP_URL":
                self.error(doc, "secretTargetRef reads AMQP_URL, which may list several "
                                "nodes (KEDA would show the rest, passwords included, as "
                                "a vhost): read AMQP_SCALER_URL, one URL")
            keys = self.keys_of("Secret", ref.get("name"))
            if keys is False:
                self.error(doc, f"Secret {ref.get('name')} does not exist")
            elif keys and ref.get("key") not in keys:
                self.error(doc, f"Secret {ref.get('name')} has no key {ref.get('key')}")

    def check_pdb(self, doc: dict, pods: list[dict]) -> None:
        spec = doc["spec"]
        if ("minAvailable" in spec) == ("maxUnavailable" in spec):
            self.error(doc, "give exactly one of minAvailable and maxUnavailable")
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        selected = [p for p in pods if p["kind"] != "Job" and match and all(
            self.template_labels(p).get(k) == v for k, v in match.items())]
        if len(selected) != 1:
            self.error(doc, f"selector {match} selects the pods of "
                            f"{[p['metadata']['name'] for p in selected]}, not one workload")
        elif self.subcommand(selected[0]) != "worker":
            self.error(doc, f"protects {selected[0]['metadata']['name']}, not the workers")

    def check_service(self, doc: dict, pods: list[dict]) -> None:
        match = doc["spec"].get("selector") or {}
        selected = [p for p in pods if match and all(
            self.template_labels(p).get(k) == v for k, v in match.items())]
        if not selected:
            self.error(doc, f"selector {match} selects no pods")
        for port in doc["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            for pod in selected:
                declared = [p for c in self.pod_spec(pod)["containers"]
                            for p in c.get("ports") or []]
                if not any(target in (p.get("name"), p["containerPort"]) for p in declared):
                    self.error(doc, f"targetPort {target} is not a port of "
                                    f"{pod['metadata']['name']}")


def relabel(labels: dict[str, str], rules: list[dict]) -> dict[str, str] | None:
    """Prometheus relabelling (replace and keep, the actions the scrape config uses)."""
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(
            labels.get(n, "") for n in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if not match:
                return None
        elif action == "replace":
            if match:
                replacement = re.sub(r"\$(\d+)", r"\\g<\1>", rule.get("replacement", "$1"))
                labels[rule["target_label"]] = match.expand(replacement)
        else:
            raise ValueError(f"relabel action {action} is not simulated here")
    return labels


def check_scrape_config(render: Render) -> None:
    """deploy/prometheus/kubernetes.yml, applied to the rendered pods as Kubernetes pod
    discovery would present them: every serving pod is kept, on its metrics port and
    path, under the job alerts.yml expects (promtool from Debian is built without
    Kubernetes discovery, so it cannot check this file)."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/kubernetes.yml").read_text())
    (job,) = config["scrape_configs"]
    alert_jobs = set(re.findall(r'job="([^"]+)"',
                                (ROOT / "deploy/prometheus/alerts.yml").read_text()))
    seen = set()
    for doc in render.docs:
        if doc["kind"] not in POD_KINDS or render.subcommand(doc) not in SERVES:
            continue
        template = doc["spec"]["template"]["metadata"]
        meta = {"job": job["job_name"], "__metrics_path__": "/metrics",
                "__meta_kubernetes_namespace": doc["metadata"].get("namespace", "default"),
                "__meta_kubernetes_pod_name": doc["metadata"]["name"] + "-x1"}
        for key, value in (template.get("annotations") or {}).items():
            meta["__meta_kubernetes_pod_annotation_" + re.sub(r"\W", "_", key)] = value
        for key, value in (template.get("labels") or {}).items():
            meta["__meta_kubernetes_pod_label_" + re.sub(r"\W", "_", key)] = value
        for c in render.pod_spec(doc)["containers"]:
            for port in c.get("ports") or [{"containerPort": None}]:
                address = "10.1.2.3" + (f":{port['containerPort']}"
                                        if port["containerPort"] else "")
                target = relabel({**meta, "__address__": address}, job["relabel_configs"])
                metrics = "9464"
                for var in c.get("env") or []:
                    if var["name"] == "METRICS_ADDR":
                        metrics = str(var.get("value", "")).rpartition(":")[2]
                if target is None:
                    render.error(doc, "deploy/prometheus/kubernetes.yml does not scrape it")
                    continue
                want = "backfill-" + template["labels"].get("app.kubernetes.io/component", "")
                if target["job"] != want or target["__address__"] != f"10.1.2.3:{metrics}" \
                        or target["__metrics_path__"] != "/metrics":
                    render.error(doc, f"scraped as job {target['job']} at "
                                      f"{target['__address__']}{target['__metrics_path__']}")
                seen.add(target["job"])
    # Every render has workers; the reconciler and the simulator are not in every one.
    if "backfill-worker" in alert_jobs and "backfill-worker" not in seen:
        render.error(None, "alerts.yml expects job backfill-worker, which no pod is scraped as")


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def validate(name: str, docs: list[dict], flags, schemas: bool = True) -> tuple[list[str], int]:
    render = Render(name, docs, flags)
    checked = render.check_schemas() if schemas else 0
    render.check()
    check_scrape_config(render)
    return render.errors, checked


# -- self-test: each breakage must be caught --------------------------------------------

def _get(docs, kind, pred=lambda d: True):
    return next(d for d in docs if d["kind"] == kind and pred(d))


def _worker(docs):
    return next(d for d in docs if d["kind"] == "Deployment"
                and d["spec"]["template"]["spec"]["containers"][0]["args"][0] == "worker")


def _container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


BREAKAGES = {
    "queue name not from the namespace": lambda d: _get(d, "ScaledObject")["spec"]["triggers"][0]
        ["metadata"].__setitem__("queueName", "other.trigger"),
    "ScaledObject targets another Deployment": lambda d: _get(d, "ScaledObject")["spec"]
        ["scaleTargetRef"].__setitem__("name", "backfill-workers"),
    "no maxReplicaCount": lambda d: _get(d, "ScaledObject")["spec"].pop("maxReplicaCount"),
    "mode MessageRate": lambda d: _get(d, "ScaledObject")["spec"]["triggers"][1]["metadata"]
        .__setitem__("mode", "MessageRate"),
    "value not a string": lambda d: _get(d, "ScaledObject")["spec"]["triggers"][0]["metadata"]
        .__setitem__("value", 100),
    "TriggerAuthentication reads a missing key": lambda d: _get(d, "TriggerAuthentication")
        ["spec"]["secretTargetRef"][0].__setitem__("key", "AMQP_URI"),
    "scaler reads the fleet's URL list": lambda d: _get(d, "TriggerAuthentication")
        ["spec"]["secretTargetRef"][0].__setitem__("key", "AMQP_URL"),
    "liveness on the wrong path": lambda d: _container(_worker(d))["livenessProbe"]["httpGet"]
        .__setitem__("path", "/health"),
    "readiness on the wrong port": lambda d: _container(_worker(d))["readinessProbe"]["httpGet"]
        .__setitem__("port", 8080),
    "grace not above --shutdown-grace-s": lambda d: _worker(d)["spec"]["template"]["spec"]
        .__setitem__("terminationGracePeriodSeconds", 20),
    "unknown worker flag": lambda d: _container(_worker(d))["args"].append("--shutdown-grace=5"),
    "secret key missing": lambda d: _container(_worker(d))["env"][1]["valueFrom"]
        ["secretKeyRef"].__setitem__("key", "LEDGER"),
    "config map missing": lambda d: _container(_worker(d))["envFrom"][0]["configMapRef"]
        .__setitem__("name", "nope"),
    "token in the ConfigMap": lambda d: _get(d, "ConfigMap")["data"]
        .__setitem__("DATABRICKS_TOKEN", "dapi123"),
    "PDB selects nothing": lambda d: _get(d, "PodDisruptionBudget")["spec"]["selector"]
        ["matchLabels"].__setitem__("app.kubernetes.io/component", "workers"),
    "selector misses the template": lambda d: _worker(d)["spec"]["selector"]["matchLabels"]
        .__setitem__("app.kubernetes.io/component", "wrk"),
    "root filesystem writable": lambda d: _container(_worker(d))["securityContext"]
        .__setitem__("readOnlyRootFilesystem", False),
    "no memory limit": lambda d: _container(_worker(d))["resources"]["limits"].pop("memory"),
    "replicas set under the scaler": lambda d: _worker(d)["spec"].__setitem__("replicas", 3),
    "unknown field (schema)": lambda d: _container(_worker(d)).__setitem__("imagePullPolcy", "x"),
    "wrong type (schema)": lambda d: _worker(d)["spec"]["template"]["spec"]
        .__setitem__("terminationGracePeriodSeconds", "30s"),
    "metrics scraped on another port": lambda d: _worker(d)["spec"]["template"]["metadata"]
        ["annotations"].__setitem__("prometheus.io/port", "9090"),
    "worker not kept by the scrape config": lambda d: _worker(d)["spec"]["template"]
        ["metadata"]["labels"].pop("app.kubernetes.io/part-of"),
}


# What the error caught for each breakage says (so that it is caught by its own check).
CAUGHT_BY = {
    "queue name not from the namespace": "names the work queues",
    "ScaledObject targets another Deployment": "scaleTargetRef names",
    "no maxReplicaCount": "must both be set",
    "mode MessageRate": "not QueueLength",
    "value not a string": "must be a string",
    "TriggerAuthentication reads a missing key": "has no key AMQP_URI",
    "scaler reads the fleet's URL list": "read AMQP_SCALER_URL",
    "liveness on the wrong path": "livenessProbe must GET /healthz",
    "readiness on the wrong port": "readinessProbe must GET /readyz",
    "grace not above --shutdown-grace-s": "not above --shutdown-grace-s",
    "unknown worker flag": "has no flag --shutdown-grace ",
    "secret key missing": "has no key LEDGER",
    "config map missing": "ConfigMap nope does not exist",
    "token in the ConfigMap": "is a credential",
    "PDB selects nothing": "not one workload",
    "selector misses the template": "does not select its own template",
    "root filesystem writable": "not read-only",
    "no memory limit": "memory request and limit",
    "replicas set under the scaler": "sets replicas",
    "unknown field (schema)": "'imagePullPolcy' was unexpected",
    "wrong type (schema)": "is not of type 'integer'",
    "metrics scraped on another port": "prometheus.io/port is 9090",
    "worker not kept by the scrape config": "kubernetes.yml does not scrape it",
}


def self_test(path: str, flags) -> int:
    base = load(path)
    failures = 0
    for what, breaks in BREAKAGES.items():
        docs = copy.deepcopy(base)
        breaks(docs)
        errors, _ = validate("self-test", docs, flags, schemas="schema" in what)
        if not any(CAUGHT_BY[what] in e for e in errors):
            print(f"self-test: NOT caught: {what} ({errors or 'no error'})", file=sys.stderr)
            failures += 1
    print(f"self-test: {len(BREAKAGES) - failures} of {len(BREAKAGES)} breakages caught")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    flags = cli_flags()
    if argv and argv[0] == "--self-test":
        return self_test(argv[1], flags)
    failed = False
    if argv and argv[0].startswith("--self-test="):
        failed = self_test(argv.pop(0).split("=", 1)[1], flags) != 0
    for arg in argv:
        name, path = arg.split("=", 1)
        docs = load(path)
        errors, checked = validate(name, docs, flags)
        kinds = sorted({d["kind"] for d in docs})
        if errors:
            failed = True
            for e in errors:
                print(f"error: {e}", file=sys.stderr)
        else:
            print(f"{name}: {len(docs)} objects valid ({', '.join(kinds)}; {checked} schema "
                  f"validations, Kubernetes {OLDEST_KUBERNETES} and latest)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
