"""Cairn's CRDs in the cluster under test, installed from crds/, and an example of each kind."""

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.cluster import REPO_ROOT
from tests.support.kube import Kube
from tests.support.wait import wait_for

CRDS_DIR = REPO_ROOT / "crds"
FIELD_MANAGER = "cairn-tests"
ESTABLISHED_TIMEOUT = 60

# Complete examples of each kind, every field set, as a person (or the operator) writes them.
DIGEST = "sha256:" + "ab" * 32

TRAINING_RUN = f"""
apiVersion: cairn.dev/v1alpha1
kind: TrainingRun
metadata:
  name: iris-1
spec:
  model: iris
  image: docker.io/cairn/trainer:dev
  imagePullPolicy: Never
  command: [python]
  args: [/opt/cairn/code/train.py, --verbose]
  code:
    configMap: {{name: iris-code, key: train.py}}
    mountPath: /opt/cairn/code
    revision: 3f2a9c1
  params: {{max_depth: 3, learning_rate: 0.1, criterion: gini, shuffle: true}}
  dataset: {{uri: "pvc://datasets/iris.csv", digest: "{DIGEST}"}}
  resources:
    requests: {{cpu: 500m, memory: 1Gi}}
    limits: {{memory: 2Gi, nvidia.com/gpu: 1}}
  env: [{{name: LOG_LEVEL, value: debug}}]
  nodeSelector: {{kubernetes.io/os: linux}}
  tolerations: [{{key: gpu, operator: Exists, effect: NoSchedule}}]
  serviceAccountName: trainer
  backoffLimit: 2
  activeDeadlineSeconds: 3600
  suspend: false
  ttlSecondsAfterFinished: 600
  output: {{uri: "pvc://cairn-artifacts/ml/iris/iris-1"}}
  register: true
status:
  observedGeneration: 1
  phase: Succeeded
  conditions:
  - type: Succeeded
    status: "True"
    observedGeneration: 1
    lastTransitionTime: "2026-01-02T03:04:05Z"
    reason: TrainerSucceeded
    message: the trainer exited 0
  jobName: iris-1
  attempts: 1
  startTime: "2026-01-02T03:00:00Z"
  completionTime: "2026-01-02T03:04:05Z"
  metrics: {{accuracy: 0.97, f1: 0.96}}
  keyMetric: accuracy=0.97
  artifact: {{uri: "pvc://cairn-artifacts/ml/iris/iris-1", digest: "{DIGEST}", size: 2048,
             format: joblib}}
  dataset: {{uri: "pvc://datasets/iris.csv", digest: "{DIGEST}", rows: 150, featureCount: 4,
            features: [sepal_length, sepal_width, petal_length, petal_width]}}
  image: docker.io/cairn/trainer:dev
  imageId: "docker.io/cairn/trainer@{DIGEST}"
  fairness:
  - sensitiveFeature: sex
    positiveLabel: "1"
    demographicParityDifference: 0.04
    disparateImpactRatio: 0.93
    equalizedOddsDifference: 0.05
    equalOpportunityDifference: 0.03
    accuracyDifference: 0.01
    groups:
    - {{group: female, count: 20, selectionRate: 0.5, accuracy: 0.95, truePositiveRate: 0.9,
       falsePositiveRate: 0.1}}
    - {{group: male, count: 18, selectionRate: 0.54, accuracy: 0.94, truePositiveRate: 0.93,
       falsePositiveRate: 0.12}}
  champion: {{version: 2, uri: "pvc://cairn-artifacts/ml/iris/iris-2", digest: "{DIGEST}"}}
  evaluation: {{championVersion: 2, championMetrics: {{accuracy: 0.95}}}}
  modelVersion: iris-v1
  version: 1
"""

MODEL = """
apiVersion: cairn.dev/v1alpha1
kind: Model
metadata:
  name: iris
spec:
  description: Classifies iris flowers.
  owner: ml-platform
  intendedUse: Teaching; not for botanical research.
  limitations: Three species only.
  ethicalConsiderations: None known.
  sensitiveFeatures: [sex, age_band]
  policy:
    gates: [{metric: accuracy, op: ">=", threshold: 0.9}]
    requireApproval: true
    promotion: {alias: production, metric: f1_macro, direction: maximize, minImprovement: 0.01}
    fairness:
    - {metric: demographicParityDifference, sensitiveFeature: sex, max: 0.1}
    - {metric: disparateImpactRatio, sensitiveFeature: age_band, min: 0.8}
  aliases: {production: 3, staging: 4}
  retention: {keepVersions: 10}
status:
  observedGeneration: 2
  latestVersion: 4
  aliases: {production: 3}
  promoted: 3
  rolledBack: [2]
  history:
  - {time: "2026-01-02T03:04:05Z", action: Promoted, alias: production, fromVersion: 1,
     toVersion: 3, by: policy, reason: "f1_macro 0.95 against 0.91"}
  - {time: "2026-01-02T04:00:00Z", action: VersionRetired, fromVersion: 1, by: retention,
     reason: spec.retention.keepVersions}
  - {time: "2026-01-02T05:00:00Z", action: VersionApproved, version: 3, by: alice,
     reason: reviewed}
"""

MODEL_VERSION = f"""
apiVersion: cairn.dev/v1alpha1
kind: ModelVersion
metadata:
  name: iris-v3
spec:
  model: iris
  version: 3
  artifact: {{uri: "pvc://cairn-artifacts/ml/iris/iris-3", digest: "{DIGEST}", size: 2048,
             format: joblib}}
  source:
    run: iris-3
    runUid: 6f1c2b7e-0000-4000-8000-000000000003
    image: docker.io/cairn/trainer:dev
    imageId: "docker.io/cairn/trainer@{DIGEST}"
    codeRevision: 3f2a9c1
    params: {{max_depth: 3}}
    dataset: {{uri: "pvc://datasets/iris.csv", digest: "{DIGEST}", rows: 150, featureCount: 4,
              features: [sepal_length, sepal_width, petal_length, petal_width]}}
    trigger: {{type: dataset, reason: "dataset digest changed", time: "2026-01-02T03:00:00Z",
              continuousTraining: iris-ct}}
  metrics: {{accuracy: 0.97}}
  evaluation: {{championVersion: 2, championMetrics: {{accuracy: 0.95}}}}
  fairness:
  - sensitiveFeature: sex
    positiveLabel: "1"
    demographicParityDifference: 0.04
    disparateImpactRatio: 0.93
    groups: [{{group: female, count: 20, selectionRate: 0.5}},
             {{group: male, count: 18, selectionRate: 0.54}}]
  signature:
    inputs: [{{name: features, dtype: float64, shape: [-1, 4]}}]
  approval: {{state: Approved, by: alice, reason: reviewed}}
status:
  phase: Approved
  gates:
  - {{metric: accuracy, op: ">=", threshold: 0.9, value: 0.97, passed: true,
     message: accuracy 0.97 >= 0.9}}
  fairnessGates:
  - {{metric: demographicParityDifference, sensitiveFeature: sex, max: 0.1, value: 0.04,
     passed: true, message: demographicParityDifference for sex = 0.04 passes <= 0.1}}
  deployments: [iris-prod]
  history:
  - {{time: "2026-01-02T03:05:00Z", action: GatesPassed, to: PendingApproval, by: policy,
     reason: 2 gate(s) passed}}
  - {{time: "2026-01-02T05:00:00Z", action: Approved, from: PendingApproval, to: Approved,
     by: alice, reason: reviewed}}
  - {{time: "2026-01-02T06:00:00Z", action: Serving, to: stable, by: ModelDeployment/iris-prod,
     reason: ModelDeployment/iris-prod serves it on its stable track}}
"""

MODEL_DEPLOYMENT = """
apiVersion: cairn.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: iris-prod
spec:
  model: iris
  alias: production
  replicas: 2
  image: docker.io/cairn/server:dev
  imagePullPolicy: Never
  resources:
    requests: {cpu: 200m, memory: 256Mi}
    limits: {memory: 1Gi}
  env: [{name: CAIRN_MAX_BATCH_SIZE, value: "16"}]
  port: 9000
  grpcPort: 9001
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 1m}
      - setWeight: 50
      - pause: {}
      analysis:
        interval: 15s
        failureLimit: 3
        minRequests: 50
        provider: prometheus
        prometheus: {address: "http://prometheus.monitoring.svc:9090"}
        metrics:
        - {name: errorRate, max: 0.05}
        - {name: latencyP99, max: 0.5, maxRatioToStable: 1.5}
        - {name: lowConfidence, query: "avg(rate(x{track='{{track}}'}[1m]))", min: 0.1}
      trafficRouting:
        gatewayAPI: {httpRoute: iris}
  progressDeadlineSeconds: 300
  paused: false
status:
  observedGeneration: 3
  phase: Progressing
  conditions:
  - type: Progressing
    status: "True"
    observedGeneration: 3
    lastTransitionTime: "2026-01-02T03:04:05Z"
    reason: CanaryStep
    message: step 1 of 4, canary weight 20
  stable: {version: 3, replicas: 2, readyReplicas: 2}
  canary:
    version: 4
    weight: 20
    step: 1
    stepStartedAt: "2026-01-02T03:04:05Z"
    replicas: 1
    readyReplicas: 1
    failedIntervals: 0
    analysisSettings: {interval: 15s, failureLimit: 3, minRequests: 50}
    analysis:
    - {name: errorRate, value: 0.01, stableValue: 0.0, threshold: max 0.05, verdict: Pass}
    - {name: latencyP99, verdict: Inconclusive}
  replicas: 3
  readyReplicas: 3
  selector: cairn.dev/deployment=iris-prod
  url: http://iris-prod.ml.svc:9000
  message: step 1 of 4, canary weight 20
"""


CONTINUOUS_TRAINING = f"""
apiVersion: cairn.dev/v1alpha1
kind: ContinuousTraining
metadata:
  name: iris-ct
spec:
  model: iris
  template:
    image: docker.io/cairn/trainer:dev
    imagePullPolicy: Never
    code: {{configMap: {{name: iris-code, key: train.py}}, mountPath: /opt/cairn/code,
            revision: 3f2a9c1}}
    params: {{max_depth: 3}}
    dataset: {{uri: "pvc://cairn-artifacts/data/iris.csv"}}
    resources: {{requests: {{cpu: 500m}}}}
    backoffLimit: 0
    activeDeadlineSeconds: 3600
    suspend: false
    register: true
  triggers:
    schedule: {{cron: "0 3 * * *", timeZone: Europe/Paris, startingDeadlineSeconds: 600}}
    dataset: {{checkEvery: 30s}}
    code: {{checkEvery: 1m}}
    conditions: [{{kind: ModelDeployment, name: iris, type: Drifted}}]
  concurrencyPolicy: Replace
  minInterval: 10m
  suspend: false
  successfulRunsHistoryLimit: 5
  failedRunsHistoryLimit: 2
status:
  observedGeneration: 1
  conditions:
  - type: Ready
    status: "True"
    observedGeneration: 1
    lastTransitionTime: "2026-01-02T03:04:05Z"
    reason: Ready
    message: 4 triggers watched
  lastTrigger: {{type: dataset, reason: "dataset changed", time: "2026-01-02T03:00:00Z",
                run: iris-ct-dataset-4}}
  runsStarted: 4
  active: [iris-ct-dataset-4]
  lastSuccessfulRun: iris-ct-schedule-1767322800
  lastSuccessfulVersion: iris-v3
  lastScheduleTime: "2026-01-02T02:00:00Z"
  nextScheduleTime: "2026-01-03T02:00:00Z"
  dataset: {{digest: "{DIGEST}", checkedAt: "2026-01-02T03:00:00Z", trainedDigest: "{DIGEST}"}}
  code: {{hash: "{DIGEST}", revision: 3f2a9c1, checkedAt: "2026-01-02T03:00:00Z",
          trainedHash: "{DIGEST}", trainedRevision: 3f2a9c1}}
  observedRequest: "new data from the partner feed"
  observedConditions:
  - {{source: ModelDeployment/iris/Drifted, lastTransitionTime: "2026-01-02T01:00:00Z"}}
  waiting: "dataset changed waits: spec.minInterval 10m"
"""


def manifest(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def crd_manifests(directory: Path = CRDS_DIR) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted(directory.glob("*.yaml"))]


def _established(api: Any, name: str) -> bool:
    conditions = api.read_custom_resource_definition(name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def install_crds(kube: Kube) -> list[str]:
    """Server-side apply every CRD (idempotent, safe from parallel workers); wait until served.

    Returns the CRDs' names. A CRD the API server refuses (a bad schema, CEL over its cost
    budget) fails here with the server's reason.
    """
    api = client.ApiextensionsV1Api(kube.api_client)
    names = []
    for manifest in crd_manifests():
        name = manifest["metadata"]["name"]
        api.patch_custom_resource_definition(
            name,
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        names.append(name)
    for name in names:
        wait_for(
            functools.partial(_established, api, name),
            timeout=ESTABLISHED_TIMEOUT,
            message=f"CRD {name} to be Established",
        )
    return names


@pytest.fixture(scope="session")
def crds_installed(k8s: Kube) -> list[str]:
    """Cairn's CRDs, applied from crds/ and Established; left installed afterwards."""
    return install_crds(k8s)
