# Croupier — see README.md. `make dev` runs the system locally; `make test` runs the tests.
SHELL := /usr/bin/env bash
GO ?= go
CONTROLLER_GEN := $(GO) tool controller-gen
K8S_VERSION ?= 1.36.3
ENVTEST_ASSETS ?= $(HOME)/.cache/croupier/k8s-$(K8S_VERSION)
VERSITYGW ?= $(HOME)/.cache/croupier/versitygw-v1.8.0/versitygw

.PHONY: all
all: build

.PHONY: generate
generate: ## Deepcopy code from the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## CRDs and RBAC from markers.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=croupier-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac

.PHONY: verify
GENERATED := api/v1alpha1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml
verify: generate manifests ## Fails when regeneration changes the generated files.
	@git diff --exit-code -- $(GENERATED) || { echo "generated files are out of date: run 'make generate manifests' and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- $(GENERATED) | grep '^??')" || { git status --porcelain -- $(GENERATED); echo "untracked generated files: run 'make generate manifests' and commit"; exit 1; }

.PHONY: fmt
fmt:
	gofmt -l -w api controllers internal cmd dispatcher console 2>/dev/null || true

.PHONY: vet
vet:
	$(GO) vet ./...

.PHONY: build
build: console ## Builds everything; bin/ gets the manager, the dispatcher, the console and the kubectl plugin.
	$(GO) build ./...
	$(GO) build -o bin/ ./cmd/manager ./cmd/dispatcher ./cmd/console ./cmd/kubectl-croupier

WEB := console/web
# npm packages from the lock file, installed again only when the lock file changes.
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund

.PHONY: console
console: $(WEB)/node_modules/.package-lock.json ## The console's front end (TypeScript, Vite) into console/web/dist, embedded by go build.
	find $(WEB)/dist -mindepth 1 ! -name .gitkeep -delete
	cd $(WEB) && npm run build

.PHONY: envtest
envtest: ## Builds kube-apiserver, etcd and kubectl from Go modules (cached), and the S3 gateway the export's tests use.
	bash hack/build-envtest.sh >/dev/null
	bash hack/build-versitygw.sh >/dev/null

.PHONY: test
test: envtest verify vet console ## Runs every test against a real API server and embedded NATS (and the console in Debian's chromium).
	cd $(WEB) && npm test
	CROUPIER_BROWSER_TESTS=required CROUPIER_S3_TESTS=required CROUPIER_VERSITYGW=$(VERSITYGW) KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -count=1 -timeout 20m ./...

.PHONY: console-screenshots
console-screenshots: envtest console ## Screenshots of the console for docs/console.md (not part of make test).
	CROUPIER_SCREENSHOTS=$(abspath docs/console) CROUPIER_BROWSER_TESTS=required KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) \
	  $(GO) test -count=1 -run 'TestConsoleInABrowser|TestPrintedAndREADMELinesWork' ./console/ ./internal/devstack/

.PHONY: dev
dev: envtest console ## Runs the whole system locally on embedded defaults (the console included).
	bash hack/dev.sh

.PHONY: bench
REFERENCE ?= ../shared/bench/natsceiling
BENCH_OUT ?= .croupier/bench.txt

# Benchmarks beside the raw JetStream ceiling measured in the same run (docs/benchmarks.md).
bench:
	@mkdir -p $(dir $(BENCH_OUT)); : > $(BENCH_OUT)
	@uname -srm | tee -a $(BENCH_OUT); nproc | sed 's/^/cores: /' | tee -a $(BENCH_OUT)
	@if [ -d $(REFERENCE) ]; then (cd $(REFERENCE) && $(GO) run . -n 200000) | tee -a $(BENCH_OUT); \
	  else echo "reference $(REFERENCE) not found: figures without a ceiling" | tee -a $(BENCH_OUT); fi
	$(GO) test -run '^$$' -bench NATSIntake -benchtime 200000x ./dispatcher/app/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench HTTPIntake -benchtime 2000x ./dispatcher/app/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench IndexMemory -benchtime 1x ./dispatcher/players/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench Decide -benchtime 2s -cpu 1 ./dispatcher/route/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench 'Pipeline(EveryEvent|OneInTen)' -benchtime 100000x ./dispatcher/app/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench PipelineLatency -benchtime 25000x ./dispatcher/app/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench SealingCost -benchtime 1x -timeout 60m ./dispatcher/app/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench EraseThousandEvents -benchtime 3x ./dispatcher/app/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench Render -benchtime 300000x ./dispatcher/render/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench SendLoopbackHTTP -benchtime 100000x -cpu 1,2 ./dispatcher/channel/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench Pacing -benchtime 1x ./dispatcher/channel/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench PushAPNs -benchtime 100000x -cpu 1,2 ./dispatcher/channel/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench SegmentEvaluation -benchtime 5x ./dispatcher/players/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench SegmentReevaluateOnePlayer -benchtime 200000x ./dispatcher/players/ | tee -a $(BENCH_OUT)
	@if [ -f $(dir $(REFERENCE))pgsegment.sh ] && [ -d /usr/lib/postgresql/15 ] && [ "$$(id -u)" = 0 ]; then bash $(dir $(REFERENCE))pgsegment.sh 1000000 | tee -a $(BENCH_OUT); \
	  else echo "PostgreSQL 15 reference not run (needs root and the postgresql package)" | tee -a $(BENCH_OUT); fi
	$(GO) test -run '^$$' -bench RunFanOut -benchtime 1x ./dispatcher/flow/ | tee -a $(BENCH_OUT)
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -run '^$$' -bench ApplyCampaigns -benchtime 1x ./controllers/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench Reserve -benchtime 20000x ./dispatcher/budget/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench Redeem -benchtime 5000x ./dispatcher/reward/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench DispatcherLoad -benchtime 100000x ./e2e/faults/ | tee -a $(BENCH_OUT)
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -run '^$$' -bench Dashboard200Campaigns -benchtime 20x ./console/server/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench BenchmarkExport -benchtime 100000x ./dispatcher/export/ | tee -a $(BENCH_OUT)
	$(GO) test -run '^$$' -bench ReportGeneration -benchtime 3x ./dispatcher/reports/ | tee -a $(BENCH_OUT)
	$(GO) run ./hack/benchdoc -in $(BENCH_OUT) -out docs/benchmarks.md

.PHONY: reliability
RELIABILITY_OUT ?= .croupier/reliability.txt
FUZZTIME ?= 15s
FUZZ_TARGETS := FuzzDecode:./dispatcher/ingest FuzzVerifySignature:./dispatcher/ingest FuzzCheck:./internal/templates \
	FuzzCompile:./internal/rules FuzzRESTAnswer:./dispatcher/channel/sms FuzzSegments:./dispatcher/channel/sms \
	FuzzReference:./dispatcher/channel/sms FuzzParse:./internal/money FuzzAppendRecord:./dispatcher/export

RUNS ?= 1
LOAD ?= 0
FAULTS_SCALE ?= 1
FAULTS_NATS ?= both

# The fault suite RUNS times (single server and three-node cluster; LOAD busy loops load
# the CPU, FAULTS_SCALE scales the event counts, e.g. make reliability RUNS=10 LOAD=2
# FAULTS_SCALE=0.3), then the hostile-input and security tests and every fuzz target for
# FUZZTIME, gathered into docs/reliability.md (docs/reliability.md says what each row proves).
reliability: envtest
	OUT=$(abspath $(RELIABILITY_OUT)) RUNS=$(RUNS) LOAD=$(LOAD) FAULTS_SCALE=$(FAULTS_SCALE) FAULTS_NATS=$(FAULTS_NATS) \
	  FUZZTIME=$(FUZZTIME) FUZZ_TARGETS="$(FUZZ_TARGETS)" GO=$(GO) KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) bash hack/reliability.sh
