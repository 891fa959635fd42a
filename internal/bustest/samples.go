package bustest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"sigs.k8s.io/yaml"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"
)

// SamplePolicyRecord is the Baku sample PreferencePolicy (config/samples) as the manager
// publishes it to croupier-config for brand, with the global holdout switched off so
// tests and benchmarks reach every player.
func SamplePolicyRecord(tb testing.TB, brand string) []byte {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "config", "samples", "baku-casino.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	var pp crmv1.PreferencePolicy
	for doc := range bytes.SplitSeq(raw, []byte("\n---\n")) {
		if bytes.Contains(doc, []byte("kind: PreferencePolicy")) {
			if err := yaml.Unmarshal(doc, &pp); err != nil {
				tb.Fatal(err)
			}
		}
	}
	pp.Spec.GlobalHoldoutPercent = 0
	b, err := bus.Encode(bus.ConfigRecord{Kind: "PreferencePolicy", Brand: brand, Name: pp.Name, UID: "pp-" + brand, Generation: 1,
		PreferencePolicy: &bus.PreferencePolicyConfig{Spec: pp.Spec, Mandatory: map[crmv1.Category]bool{
			crmv1.CategoryService: true, crmv1.CategoryResponsibleGaming: true}}})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// SamplePolicy is the Baku sample PreferencePolicy (holdout 0), compiled for brand.
func SamplePolicy(tb testing.TB, brand string) *prefs.Policy {
	tb.Helper()
	rec, err := bus.Decode[bus.ConfigRecord](SamplePolicyRecord(tb, brand))
	if err != nil {
		tb.Fatal(err)
	}
	pol, err := prefs.Compile(brand, rec.PreferencePolicy, rec.Generation)
	if err != nil {
		tb.Fatal(err)
	}
	return pol
}
