# Cairn developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Everything Python runs from the project's own virtual environment, never the system's: a fresh
# machine's site-packages may hold unrelated packages whose pins conflict with ours.
SYSTEM_PYTHON ?= python3
VENV := $(CURDIR)/.venv
PYTHON ?= $(VENV)/bin/python
LOCALKUBE := hack/localkube
export CAIRN_LOCALKUBE_DIR ?= $(HOME)/.cache/cairn/localkube
KUBECONFIG_LOCAL := $(CAIRN_LOCALKUBE_DIR)/kubeconfig
# The kubectl that hack/localkube builds comes first; a user's own kubectl works too.
LOCAL_BIN := $(shell . hack/localkube/lib.sh && echo $$K8S_BIN)
export PATH := $(VENV)/bin:$(LOCAL_BIN):$(PATH)
PYTEST_ARGS ?=
# Extra arguments of the benchmark scripts, for example BENCH_ARGS="--versions 100".
BENCH_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Where the demo keeps its models: volume (the artifact claim, the default) or s3 (the local
# object store, `make demo STORE=s3`).
STORE ?= volume

.PHONY: demo
demo: install helm cluster-up images $(if $(filter s3,$(STORE)),storage-up) ## Local cluster, images, the chart; train, serve, canary v2 to promotion (STORE=s3: models on the object store)
	@hack/demo.sh --store $(STORE)

.PHONY: demo-bad
demo-bad: install helm cluster-up images $(if $(filter s3,$(STORE)),storage-up) ## As demo, but v2 fails on some inputs: the canary is rolled back
	@hack/demo.sh --bad --store $(STORE)

.PHONY: demo-loop
demo-loop: install helm cluster-up images ## Continuous training: new rows in the CSV retrain, the better v2 is promoted by itself and canaried
	@hack/demo-loop.sh

.PHONY: demo-drift
demo-drift: install helm cluster-up images ## Monitoring: traffic drifts, Drifted starts a retrain, the better v2 is canaried in
	@hack/demo-drift.sh

.PHONY: test
test: install lint helm cluster-up images storage-up ## Lint, then unit and integration tests on the local cluster (a slice also against the chart's operator)
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m pytest $(PYTEST_ARGS)

.PHONY: test-in-cluster
test-in-cluster: install helm cluster-up images storage-up ## Integration tests against the operator the Helm chart installs (per test namespace)
	KUBECONFIG=$(KUBECONFIG_LOCAL) CAIRN_TEST_OPERATOR=chart $(PYTHON) -m pytest -m integration $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install helm ## Unit tests only (no cluster)
	$(PYTHON) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: install
install: $(VENV)/.installed ## Install the cairn package with its test and dev tools into .venv

# Reinstalled when pyproject.toml changes; the stamp is written only after pip succeeded.
$(VENV)/.installed: pyproject.toml
	@test -x $(VENV)/bin/python || $(SYSTEM_PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dev]'
	@touch $@

.PHONY: lint
lint: ## ruff (lint and format) and mypy
	$(PYTHON) -m ruff check operator tests hack bench
	$(PYTHON) -m ruff format --check operator tests hack bench
	$(PYTHON) -m mypy

.PHONY: crds
crds: ## Regenerate crds/ (and the Helm chart's copy) from the API models in operator/cairn/api
	PYTHONPATH=operator $(PYTHON) -m cairn.api.crdgen crds
	@# A chart cannot read files outside its directory, so it carries its own copy.
	PYTHONPATH=operator $(PYTHON) -m cairn.api.crdgen charts/cairn/files/crds

.PHONY: helm
helm: ## Build (or reuse cached) helm from its Go module, for the chart and its tests
	@hack/helm/build.sh

.PHONY: install-crds
install-crds: ## Apply crds/ to the cluster that KUBECONFIG names
	kubectl apply --server-side --force-conflicts -f crds/
	kubectl wait --for=condition=Established -f crds/

.PHONY: run
run: install install-crds ## Run the operator in the foreground against the KUBECONFIG cluster
	cairn-operator

.PHONY: chaos
chaos: install cluster-up images ## The operator SIGKILLed, the API server, etcd and the kubelet restarted, at random moments of whole workloads (CHAOS_KILLS, CHAOS_FAULTS, CHAOS_SEED to replay); last lines chaos_runs=.. invariant_violations=..
	KUBECONFIG=$(KUBECONFIG_LOCAL) CAIRN_CHAOS_KILLS=$(or $(CHAOS_KILLS),60) CAIRN_CHAOS_SEED=$(CHAOS_SEED) \
		CAIRN_CONTROL_PLANE_FAULTS=$(or $(CHAOS_FAULTS),60) CAIRN_CHAOS_ROUNDS=$(or $(CHAOS_ROUNDS),30) \
		$(PYTHON) -m pytest tests/integration/test_chaos.py tests/integration/test_control_plane_chaos.py \
		-p no:cacheprovider -s

.PHONY: soak
soak: install cluster-up images ## 30 minutes of traffic with a rollout every 5: operator and server memory growth, errors
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m bench.soak.soak $(BENCH_ARGS)

.PHONY: fuzz
fuzz: install cluster-up ## Objects drawn from the CRDs' schemas against the real API server and operator (FUZZ_EXAMPLES per kind, FUZZ_SEED to replay)
	KUBECONFIG=$(KUBECONFIG_LOCAL) CAIRN_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),2000) CAIRN_FUZZ_SEED=$(FUZZ_SEED) \
		$(PYTHON) -m pytest tests/integration/test_fuzzed_specs.py -p no:cacheprovider -s

.PHONY: bench
bench: bench-train bench-registry bench-ct bench-scale bench-serve bench-rollout bench-storage bench-monitoring ## Every benchmark; each ends with a one-line summary

.PHONY: bench-train
bench-train: install cluster-up ## 200 TrainingRuns at once: run-to-Job latency and operator memory
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m bench.train.bench_train

.PHONY: bench-registry
bench-registry: install cluster-up ## 1 Model, 500 versions, 20 ModelDeployments: API requests at rest, new version to Ready (~6 min)
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m bench.registry.bench_registry $(BENCH_ARGS)

.PHONY: bench-ct
bench-ct: install cluster-up ## 200 ContinuousTrainings scheduled every 10s for 2 min: schedule lag, missed, duplicated (~4 min)
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m bench.ct.bench_ct $(BENCH_ARGS)

.PHONY: bench-scale
bench-scale: install cluster-up ## 50 kwok nodes; 2,000 runs, 10,000 versions of 100 Models, 300 ModelDeployments: reconcile p99, API requests at rest, memory (BENCH_ARGS="--runs 200 --versions 1000 --models 10 --deployments 30" for a quick one)
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m bench.scale.bench $(BENCH_ARGS)

.PHONY: kwok
kwok: ## Build (or reuse cached) kwok from its Go module, for bench-scale
	hack/kwok/build.sh --path

.PHONY: localkube
localkube: ## Build (or reuse cached) Kubernetes, etcd and containerd from their Go modules
	$(LOCALKUBE)/deps.sh
	$(LOCALKUBE)/build.sh

.PHONY: cluster-up
cluster-up: ## Start the local single-node cluster (idempotent); prints export KUBECONFIG=...
	$(LOCALKUBE)/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove its processes, mounts, bridges and rules
	$(LOCALKUBE)/down.sh

.PHONY: cluster-clean
cluster-clean: ## cluster-down, then delete the cluster's state (PKI, etcd data, images)
	$(LOCALKUBE)/down.sh --purge

.PHONY: storage-up
storage-up: cluster-up ## The local S3-compatible object store (SeaweedFS, built from its Go module) in the cluster
	@hack/storage/up.sh >/dev/null

.PHONY: storage-down
storage-down: ## Remove the local object store (its data stays on the node for the next storage-up)
	hack/storage/up.sh --delete

.PHONY: cluster-status
cluster-status: ## Report each component of the local cluster
	@$(LOCALKUBE)/status.sh

.PHONY: images
images: ## Build cairn/{operator,trainer,server}:dev and load them into the local cluster if it runs
	hack/images/build.sh
	@if $(LOCALKUBE)/status.sh >/dev/null 2>&1; then \
	  CTR=$$(. $(LOCALKUBE)/lib.sh && echo $$CONTAINERD_BIN/ctr) \
	  hack/images/load.sh $(CAIRN_LOCALKUBE_DIR)/run/containerd.sock; \
	else echo "local cluster not running: images will be loaded by 'make cluster-up'"; fi

.PHONY: bench-rollout
bench-rollout: install cluster-up images ## Canary judgement at 5 s intervals: rollback time, 50 healthy rollouts (~25 min)
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m bench.rollout.bench_rollout

.PHONY: bench-storage
bench-storage: install storage-up ## 200 MB model: download, verify and load through the model cache vs a plain boto3 download; cache-hit start
	KUBECONFIG=$(KUBECONFIG_LOCAL) $(PYTHON) -m bench.storage.bench_storage $(BENCH_ARGS)

.PHONY: bench-monitoring
bench-monitoring: install ## Drift detection on real cairn-serve processes: windows to Drifted after a shift, false alarms in 100 calm windows, against Evidently's and Alibi Detect's default tests (~6 min)
	$(PYTHON) -m bench.monitoring.bench_monitoring $(BENCH_ARGS)

.PHONY: bench-serve
bench-serve: install ## Benchmark cairn-serve (REST and gRPC) against MLServer, a bare Starlette app and its stack's ceiling (~25 min)
	$(PYTHON) -m bench.serve.bench
