{{/*
The rules the operator needs in a namespace it watches: exactly the verbs of the calls in
operator/cairn/kube/*.py plus what kopf does to the objects it watches. No wildcards.
The same rules go into the ClusterRole (cluster-wide) or into a Role per watched namespace.
*/}}
{{- define "cairn.namespacedRules" -}}
# kopf lists and watches all five kinds (handlers, resync indexes and the watch caches) and
# patches its bookkeeping into their cairn.dev/ annotations; the controllers read them
# (kube/objects.py, kube/cache.py).
- apiGroups: [cairn.dev]
  resources: [trainingruns, models, modelversions, modeldeployments, continuoustrainings]
  verbs: [get, list, watch, patch]
# A ContinuousTraining starts TrainingRuns and deletes the finished ones its history limits no
# longer keep (controllers/continuoustraining/runs.py).
- apiGroups: [cairn.dev]
  resources: [trainingruns]
  verbs: [create, delete]
# Registration creates the Model of a run's spec.model and the ModelVersion it trained
# (controllers/trainingrun/registration.py).
- apiGroups: [cairn.dev]
  resources: [models, modelversions]
  verbs: [create]
# Retention deletes the oldest unused versions of a Model (controllers/registry/models.py).
- apiGroups: [cairn.dev]
  resources: [modelversions]
  verbs: [delete]
# Status is written only through the status subresource, as merge patches of what changed, each
# kind's by its own controller (kube/status.py).
- apiGroups: [cairn.dev]
  resources: [trainingruns/status, models/status, modelversions/status, modeldeployments/status,
    continuoustrainings/status]
  verbs: [patch]
# Children carry ownerReferences with blockOwnerDeletion (kopf.adopt): where the
# OwnerReferencesPermissionEnforcement admission plugin runs, that needs update on the owner's
# finalizers. Runs own Jobs, Models own ModelVersions, ModelDeployments own Deployments/Services,
# ContinuousTrainings own their runs and dataset probes.
- apiGroups: [cairn.dev]
  resources: [trainingruns/finalizers, models/finalizers, modeldeployments/finalizers,
    continuoustrainings/finalizers]
  verbs: [update]
# A run's Job: created, read, suspended and resumed; watched for progress (controllers/trainingrun).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch]
# Training and serving pods are listed and watched; a failed run's log tail goes into its status,
# and canary analysis reads each serving pod's /metrics through the API server's pod proxy.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# A ContinuousTraining's dataset trigger measures the dataset with a short probe pod that mounts
# it, reads its result and deletes it (controllers/continuoustraining/probe.py).
- apiGroups: [""]
  resources: [pods]
  verbs: [create, delete]
# Before a run's Job is created its output claim and code ConfigMap must exist: a missing one is
# named in the run's status instead of a pod that never starts (controllers/trainingrun).
- apiGroups: [""]
  resources: [persistentvolumeclaims, configmaps]
  verbs: [get]
- apiGroups: [""]
  resources: [pods/log, pods/proxy]
  verbs: [get]
# A ModelDeployment's stable and canary Deployments: server-side apply (patch, and create when the
# object is new), deleting a finished canary, watched for readiness (controllers/deployment).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
# A ModelDeployment's Service, by server-side apply.
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch]
# Events of every user-visible transition (kube/events.py) and kopf's warnings (core/v1 Events);
# a training pod that does not start is explained by the kubelet's Warning Events, read (list).
- apiGroups: [""]
  resources: [events]
  verbs: [create, list]
# Exact canary weights: the rollout sets the backend weights of the HTTPRoute named in a
# ModelDeployment's spec.strategy.canary.trafficRouting (Gateway API).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, patch]
{{- end -}}

{{/*
Cluster-wide only: kopf watches CustomResourceDefinitions to start and stop serving resources as
they come and go ("scanning"). In namespaced mode scanning is off and this is not granted.
*/}}
{{- define "cairn.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}
