package controllers

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestDefaultConfigRendersAndApplies renders config/default with kubectl kustomize (the
// kubectl built beside the test API server) and applies every object with a server-side
// dry run, so a broken manifest fails here, not in a cluster.
func TestDefaultConfigRendersAndApplies(t *testing.T) {
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	out, err := exec.Command(kubectl, "kustomize", filepath.Join("..", "config", "default")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	kinds := map[string]int{}
	ctx := context.Background()
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) == 0 {
			continue
		}
		kinds[u.GetKind()]++
		if u.GetKind() == "CustomResourceDefinition" || u.GetKind() == "Namespace" {
			continue // installed by the suite; a dry-run create would conflict
		}
		if err := k8s.Create(ctx, u, client.DryRunAll); err != nil {
			if u.GetNamespace() == "croupier-system" {
				// The namespace is not created in the test API server; check the object in
				// a namespace that exists instead.
				u.SetNamespace("default")
				err = k8s.Create(ctx, u, client.DryRunAll)
			}
			if err != nil {
				t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
	for kind, want := range map[string]int{"CustomResourceDefinition": 5, "Deployment": 3, "ClusterRole": 7, "ServiceAccount": 3, "ConfigMap": 2,
		"PodDisruptionBudget": 2, "NetworkPolicy": 2, "Service": 3} {
		if kinds[kind] != want {
			t.Errorf("%d %s objects rendered, want %d (all: %v)", kinds[kind], kind, want, kinds)
		}
	}
}

// The optional monitoring (Prometheus Operator) renders its ServiceMonitor and the alert
// rules the operations issue names: consumer lag, SLA breaches, provider failures, budget
// near the cap. (The test API server has no monitoring CRDs, so these are only parsed.)
func TestMonitoringRenders(t *testing.T) {
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	out, err := exec.Command(kubectl, "kustomize", filepath.Join("..", "config", "prometheus")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	kinds := map[string]int{}
	alerts := map[string]bool{}
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		kinds[u.GetKind()]++
		groups, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
		for _, g := range groups {
			rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
			for _, r := range rules {
				alert, _, _ := unstructured.NestedString(r.(map[string]any), "alert")
				expr, _, _ := unstructured.NestedString(r.(map[string]any), "expr")
				if expr == "" {
					t.Errorf("alert %s has no expression", alert)
				}
				alerts[alert] = true
			}
		}
	}
	if kinds["ServiceMonitor"] != 1 || kinds["PrometheusRule"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
	for _, a := range []string{"CroupierPartitionLag", "CroupierMandatorySLABreached", "CroupierProviderFailing", "CroupierBudgetNearCap"} {
		if !alerts[a] {
			t.Errorf("no %s alert (have %v)", a, alerts)
		}
	}
}
