package faults_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
)

// On the three-node cluster: a dispatcher asking for fewer stream replicas than the
// streams have is refused with an error naming the flag, and one that leaves the count
// unset keeps R3; the same event id twice in one publish batch, which the cluster can
// answer with 409/10158 "duplicate message id is in process", is one event and one
// duplicate, not a failure.
func TestClusterTopologyAndDuplicatesInProcess(t *testing.T) {
	s := newStackOn(t, true)
	ctx := context.Background()
	_, err := bus.EnsureTopology(ctx, s.js, bus.TopologyOptions{Partitions: partitions, Replicas: 1})
	if err == nil || !strings.Contains(err.Error(), bus.ReplicasFlag+"=1") || !strings.Contains(err.Error(), "never lowers redundancy") {
		t.Fatalf("ensuring the topology with 1 replica on R3 streams: %v; want a refusal naming %s", err, bus.ReplicasFlag)
	}
	topo, err := bus.EnsureTopology(ctx, s.js, bus.TopologyOptions{Partitions: partitions})
	if err != nil || topo.Replicas != 3 {
		t.Fatalf("ensuring the topology with the count unset: %+v, %v; want 3 replicas kept", topo, err)
	}
	for _, name := range []string{bus.StreamEvents, "KV_" + bus.BucketState} {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s has %d replicas after the refused request, want 3", name, r)
		}
	}
	total := ingest.Accepted{}
	for i := range 50 {
		ev := deposit(i, 10)
		e := ingest.Encoded{Brand: brand, Player: player(i % 10), Type: "deposit.completed", Key: "pam.baku/" + ev.id, Body: ev.body}
		acc, err := ingest.Publish(ctx, s.js, []ingest.Encoded{e, e, e})
		if err != nil {
			t.Fatalf("batch %d with one id three times: %v", i, err)
		}
		total.Accepted += acc.Accepted
		total.Duplicates += acc.Duplicates
	}
	if total.Accepted != 50 || total.Duplicates != 100 {
		t.Errorf("%+v; want 50 accepted and 100 duplicates", total)
	}
	fmt.Fprintf(testWriter{t}, "50 batches of one id three times: %d accepted, %d duplicates\n", total.Accepted, total.Duplicates)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
