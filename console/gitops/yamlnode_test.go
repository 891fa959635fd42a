package gitops

import (
	"errors"
	"os"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func sampleCampaigns(t *testing.T) ([]byte, []string) {
	t.Helper()
	b, err := os.ReadFile("../../config/samples/baku-casino.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range splitDocs(b) {
		var o manifest
		if yaml.Unmarshal(b[d.start:d.end], &o) == nil && o.Kind == "Campaign" {
			names = append(names, o.Metadata.Name)
		}
	}
	if len(names) < 5 {
		t.Fatalf("found %d campaigns in the samples", len(names))
	}
	return b, names
}

// Every sample Campaign, opened and saved without a change (also after a round through
// another writer's style), leaves its file byte-identical; re-encoding its node tree alone
// gives its bytes back too, so an edit's diff is only the edit.
func TestSamplesRoundTripByteIdentical(t *testing.T) {
	file, names := sampleCampaigns(t)
	for _, name := range names {
		d, ok := findDoc(file, "Campaign", "baku-casino", name)
		if !ok {
			t.Fatalf("%s: not found", name)
		}
		doc := string(file[d.start:d.end])
		n, err := parseDoc(doc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := encodeDoc(n)
		if err != nil || again != doc {
			t.Fatalf("%s: re-encoding changed the document (%v):\n%s", name, err, again)
		}
		var v any
		_ = yaml.Unmarshal([]byte(doc), &v)
		restyled, _ := yaml.Marshal(v) // four-space indent, keys sorted, no comments
		for _, edit := range []string{doc, string(restyled)} {
			got, err := Merge(doc, edit, doc)
			if err != nil || got != doc {
				t.Fatalf("%s: unchanged save changed it (%v):\n%s", name, err, got)
			}
		}
		out, err := Replace(file, "Campaign", "baku-casino", name, doc, doc)
		if err != nil || string(out) != string(file) {
			t.Fatalf("%s: the file changed (%v)", name, err)
		}
	}
}

func TestMergeEditsOnlyWhatChanged(t *testing.T) {
	file, _ := sampleCampaigns(t)
	d, _ := findDoc(file, "Campaign", "baku-casino", "welcome-series")
	doc := string(file[d.start:d.end])
	edit := strings.Replace(doc, "timeout: 72h", "timeout: 48h", 1)
	got, err := Merge(doc, edit, doc)
	if err != nil {
		t.Fatal(err)
	}
	if got != edit {
		t.Fatalf("one scalar edited, the document differs elsewhere:\n%s", got)
	}
	if !strings.Contains(got, "# Sized for a day of sign-ups") {
		t.Fatal("comment lost")
	}

	// Someone else changed another field since: both land.
	theirs := strings.Replace(doc, "priority: 70", "priority: 80", 1)
	got, err = Merge(doc, edit, theirs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "priority: 80") || !strings.Contains(got, "timeout: 48h") {
		t.Fatalf("rebase lost a change:\n%s", got)
	}
	// ... or the same field, differently: a conflict naming it, nothing applied.
	theirs = strings.Replace(doc, "timeout: 72h", "timeout: 24h", 1)
	_, err = Merge(doc, edit, theirs)
	var c *Conflict
	if !errors.As(err, &c) || len(c.Fields) != 1 || c.Fields[0] != "spec.steps[1].waitFor.timeout" {
		t.Fatalf("want a conflict on spec.steps[1].waitFor.timeout, got %v", err)
	}
	// ... the same way: no conflict.
	if got, err = Merge(doc, edit, edit); err != nil || got != edit {
		t.Fatalf("same change on both sides: %v", err)
	}

	// Added and removed keys; a step added (the sequence replaced).
	edit = strings.Replace(doc, "  priority: 70\n", "", 1)
	edit = strings.Replace(edit, "  category: marketing\n", "  category: marketing\n  paused: true\n", 1)
	edit = strings.Replace(edit, "    - name: done\n      exit: {}\n", "    - name: done\n      exit: {}\n    - name: tail\n      exit: {}\n", 1)
	got, err = Merge(doc, edit, doc)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Spec struct {
			Priority *int `yaml:"priority"`
			Paused   bool `yaml:"paused"`
			Steps    []struct {
				Name string `yaml:"name"`
			} `yaml:"steps"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	if m.Spec.Priority != nil || !m.Spec.Paused || len(m.Spec.Steps) != 10 || m.Spec.Steps[9].Name != "tail" {
		t.Fatalf("got %+v", m.Spec)
	}
	if !strings.Contains(got, "# Sized for a day of sign-ups") {
		t.Fatal("comment lost")
	}
}

func TestSplitDocsKeepsEveryByte(t *testing.T) {
	for _, f := range []string{"a: 1\n---\nb: 2\n", "---\na: 1\n--- # c\nb: 2\n", "a: 1\n"} {
		var got strings.Builder
		prev := 0
		for _, d := range splitDocs([]byte(f)) {
			got.WriteString(f[prev:d.start])
			got.WriteString(f[d.start:d.end])
			prev = d.end
		}
		if got.String() != f {
			t.Fatalf("%q -> %q", f, got.String())
		}
	}
}
