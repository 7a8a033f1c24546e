#!/usr/bin/env python3
"""Writes a deterministic corpus of Kubernetes manifests of mixed kinds.

usage: gen_corpus.py OUT_DIR [DOCUMENTS] [DOCS_PER_FILE]

About half of the workloads are hardened and half carry typical mistakes,
so every check has work to do. Plain text is written by hand (no YAML
library needed) in the block style people and Helm produce.
"""
import os
import random
import sys

KINDS = [
    ("Deployment", 30), ("Service", 15), ("ConfigMap", 10), ("StatefulSet", 8),
    ("DaemonSet", 5), ("Job", 5), ("CronJob", 5), ("Pod", 7), ("Role", 4),
    ("RoleBinding", 4), ("NetworkPolicy", 4), ("Namespace", 3),
]


def pod_spec(rng, indent, name):
    pad = " " * indent
    hardened = rng.random() < 0.5
    lines = []
    if hardened:
        lines += [
            "automountServiceAccountToken: false",
            "securityContext:",
            "  runAsNonRoot: true",
            f"  runAsUser: {10000 + rng.randrange(1000)}",
            "  seccompProfile:",
            "    type: RuntimeDefault",
        ]
    else:
        if rng.random() < 0.2:
            lines.append("hostNetwork: true")
        if rng.random() < 0.1:
            lines.append("hostPID: true")
    lines.append("containers:")
    for c in range(1 + rng.randrange(2)):
        tag = rng.choice(["1.25.3", "2.4.1", "latest", "3.1"]) if not hardened else "1.4.2"
        registry = rng.choice(["", "ghcr.io/acme/", "quay.io/team/", "registry.example.com:5000/"])
        lines += [
            f"- name: {name}-{c}",
            f"  image: {registry}app{c}:{tag}",
            "  ports:",
            f"  - containerPort: {8080 + c}",
            "    protocol: TCP",
            "  env:",
            "  - name: LOG_LEVEL",
            "    value: info",
            "  - name: MODE",
            "    value: \"0755\"",
        ]
        if hardened:
            lines += [
                "  securityContext:",
                "    allowPrivilegeEscalation: false",
                "    readOnlyRootFilesystem: true",
                "    capabilities:",
                "      drop: [ALL]",
                "  resources:",
                "    requests: {cpu: 100m, memory: 128Mi}",
                "    limits: {cpu: 500m, memory: 256Mi}",
                "  livenessProbe:",
                f"    httpGet: {{path: /healthz, port: {8080 + c}}}",
                "  readinessProbe:",
                f"    httpGet: {{path: /readyz, port: {8080 + c}}}",
            ]
        else:
            if rng.random() < 0.3:
                lines += ["  securityContext:", "    privileged: true"]
            elif rng.random() < 0.3:
                lines += ["  securityContext:", "    capabilities:", "      add: [NET_ADMIN, SYS_TIME]"]
            if rng.random() < 0.5:
                lines += ["  resources:", "    requests: {cpu: 50m}"]
            if rng.random() < 0.3:
                lines += ["  volumeMounts:", "  - name: host", "    mountPath: /host"]
    if not hardened and any("mountPath: /host" in l for l in lines):
        lines += ["volumes:", "- name: host", "  hostPath:", "    path: /var/lib"]
    return "\n".join(pad + l for l in lines)


def template(rng, indent, name):
    pad = " " * indent
    return (
        f"{pad}metadata:\n{pad}  labels:\n{pad}    app: {name}\n"
        f"{pad}spec:\n{pod_spec(rng, indent + 2, name)}"
    )


def document(rng, kind, i):
    ns = f"team-{i % 40}"
    name = f"{kind.lower()}-{i}"
    head = f"metadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app: {name}\n    tier: backend\n"
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        extra = "  serviceName: svc\n" if kind == "StatefulSet" else ""
        return (f"apiVersion: apps/v1\nkind: {kind}\n{head}spec:\n  replicas: 2\n{extra}"
                f"  selector:\n    matchLabels:\n      app: {name}\n  template:\n{template(rng, 4, name)}\n")
    if kind == "Job":
        return f"apiVersion: batch/v1\nkind: Job\n{head}spec:\n  template:\n{template(rng, 4, name)}\n    restartPolicy: Never\n"
    if kind == "CronJob":
        return (f"apiVersion: batch/v1\nkind: CronJob\n{head}spec:\n  schedule: \"*/5 * * * *\"\n"
                f"  jobTemplate:\n    spec:\n      template:\n{template(rng, 8, name)}\n        restartPolicy: OnFailure\n")
    if kind == "Pod":
        return f"apiVersion: v1\nkind: Pod\n{head}spec:\n{pod_spec(rng, 2, name)}\n"
    if kind == "Service":
        return f"apiVersion: v1\nkind: Service\n{head}spec:\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
    if kind == "ConfigMap":
        return f"apiVersion: v1\nkind: ConfigMap\n{head}data:\n  config.yaml: |\n    level: info\n    retries: 3\n"
    if kind == "Role":
        verbs = "[\"*\"]" if rng.random() < 0.3 else "[get, list, watch]"
        res = "[pods, pods/exec]" if rng.random() < 0.3 else "[configmaps]"
        return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n{head}rules:\n"
                f"- apiGroups: [\"\"]\n  resources: {res}\n  verbs: {verbs}\n")
    if kind == "RoleBinding":
        role = "cluster-admin" if rng.random() < 0.1 else "viewer"
        return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n{head}roleRef:\n"
                f"  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\n"
                f"subjects:\n- kind: ServiceAccount\n  name: default\n  namespace: {ns}\n")
    if kind == "NetworkPolicy":
        return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{head}spec:\n  podSelector: {{}}\n"
                f"  policyTypes: [Ingress]\n")
    if kind == "Namespace":
        return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{i}\n  labels:\n    team: t{i % 7}\n"
    raise ValueError(kind)


def main():
    out = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    rng = random.Random(42)
    kinds = [k for k, w in KINDS for _ in range(w)]
    os.makedirs(out, exist_ok=True)
    written = 0
    file_index = 0
    while written < total:
        docs = []
        for _ in range(min(per_file, total - written)):
            docs.append(document(rng, rng.choice(kinds), written))
            written += 1
        with open(os.path.join(out, f"manifests-{file_index:05}.yaml"), "w") as f:
            f.write("---\n".join(docs))
        file_index += 1
    print(f"{written} documents in {file_index} files under {out}")


if __name__ == "__main__":
    main()
