package bus_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

func startJS(t *testing.T) (jetstream.JetStream, *nats.Conn) {
	t.Helper()
	nc, js := bustest.StartBare(t).Connect(t)
	return js, nc
}

func TestEnsureTopologyIsIdempotentAndCheckable(t *testing.T) {
	js, _ := startJS(t)
	ctx := context.Background()

	_, err := bus.CheckTopology(ctx, js)
	var missing *bus.MissingTopologyError
	if !errors.As(err, &missing) || len(missing.Streams) != 10 || len(missing.Buckets) != 12 {
		t.Fatalf("before EnsureTopology: got %v, want every stream and bucket missing", err)
	}

	topo, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{Partitions: 16})
	if err != nil {
		t.Fatal(err)
	}
	if topo.Partitions != 16 {
		t.Fatalf("partitions = %d, want 16", topo.Partitions)
	}
	// A second call with another partition count keeps the stream's count.
	topo, err = bus.EnsureTopology(ctx, js, bus.TopologyOptions{Partitions: 64})
	if err != nil {
		t.Fatalf("second EnsureTopology: %v", err)
	}
	if topo.Partitions != 16 {
		t.Fatalf("partitions after second call = %d, want the original 16", topo.Partitions)
	}
	got, err := bus.CheckTopology(ctx, js)
	if err != nil || got.Partitions != 16 {
		t.Fatalf("CheckTopology = %+v, %v", got, err)
	}
	s, err := js.Stream(ctx, bus.StreamIntents)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; !cfg.AllowMsgSchedules || !cfg.AllowRollup || cfg.DenyPurge {
		t.Fatalf("INTENTS config: schedules=%v rollup=%v denyPurge=%v", cfg.AllowMsgSchedules, cfg.AllowRollup, cfg.DenyPurge)
	}
	if _, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{AuditMaxAge: time.Hour}); err == nil {
		t.Fatal("an audit max age under a year must be refused")
	}
}

func TestPartitionMatchesServerTransform(t *testing.T) {
	js, _ := startJS(t)
	ctx := context.Background()
	const parts = 64
	if _, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := 0; i < 500; i++ {
		player := "p-" + strconv.Itoa(100000+i*7919)
		if _, err := js.Publish(ctx, bus.EventSubject("baku", player, "deposit.completed"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		want := bus.StoredEventSubject("baku", bus.Partition(player, parts), player, "deposit.completed")
		msg, err := js.Stream(ctx, bus.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := msg.GetLastMsgForSubject(ctx, want)
		if err != nil {
			t.Fatalf("player %s: nothing stored under %s: %v", player, want, err)
		}
		if raw.Subject != want {
			t.Fatalf("stored as %s, want %s", raw.Subject, want)
		}
		seen[bus.Partition(player, parts)] = true
	}
	if len(seen) < parts/2 {
		t.Fatalf("500 players fell into only %d of %d partitions", len(seen), parts)
	}
	// A publish without a type token is stored untransformed, for the dead-letter mover.
	if _, err := js.Publish(ctx, "croupier.events.baku.p-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, bus.StreamEvents)
	if _, err := s.GetLastMsgForSubject(ctx, "croupier.events.baku.p-1"); err != nil {
		t.Fatalf("untransformed event not stored under its own subject: %v", err)
	}
}

func TestAuditAndConsentRefuseDeleteAndPurge(t *testing.T) {
	js, _ := startJS(t)
	ctx := context.Background()
	if _, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ stream, subject string }{
		{bus.StreamAudit, bus.AuditSubject("baku", bus.KindCampaign, "welcome")},
		{bus.StreamConsent, bus.ConsentSubject("baku", 3, "p-1")},
	} {
		ack, err := js.Publish(ctx, c.subject, []byte(`{"action":"created"}`))
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, c.stream)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMsg(ctx, ack.Sequence); err == nil {
			t.Errorf("%s: deleting a message succeeded", c.stream)
		}
		if err := s.Purge(ctx); err == nil {
			t.Errorf("%s: purge succeeded", c.stream)
		}
		if _, err := s.GetMsg(ctx, ack.Sequence); err != nil {
			t.Errorf("%s: message gone: %v", c.stream, err)
		}
	}
}

func TestMessageScheduleOnIntents(t *testing.T) {
	js, nc := startJS(t)
	ctx := context.Background()
	if _, err := bus.EnsureTopology(ctx, js, bus.TopologyOptions{}); err != nil {
		t.Fatal(err)
	}
	target := bus.IntentSubject("baku", 5, "p-9")
	sub, err := nc.SubscribeSync(target)
	if err != nil {
		t.Fatal(err)
	}
	_ = sub
	at := time.Now().Add(1500 * time.Millisecond)
	msg := nats.NewMsg(bus.ScheduleSubject("baku", 5, "p-9", "welcome", "f1", "wait"))
	msg.Data = []byte(`{"id":"i-1"}`)
	msg.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
	msg.Header.Set("Nats-Schedule-Target", target)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, bus.StreamIntents)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := s.GetLastMsgForSubject(ctx, target); err == nil {
			if time.Now().Before(at.Add(-50 * time.Millisecond)) {
				t.Fatalf("scheduled intent arrived early")
			}
			if string(m.Data) != `{"id":"i-1"}` {
				t.Fatalf("payload %q", m.Data)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("scheduled intent never arrived")
}

func TestSubjectsAndTokens(t *testing.T) {
	if bus.ValidToken("p.1") || bus.ValidToken("") || bus.ValidToken("p 1") || !bus.ValidToken("p-100234_A") {
		t.Fatal("token validation")
	}
	if err := bus.CheckToken("subject", "a.b"); err == nil || err.Error() == "" {
		t.Fatal("CheckToken must name the field")
	}
	if got := bus.IntentSubject("baku", 7, "p-1"); got != "croupier.intents.baku.7.p-1" {
		t.Fatal(got)
	}
	if got := bus.RunID("uid-1", time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)); got != "uid-1@20261122T060000Z" {
		t.Fatal(got)
	}
	if !bus.ValidEventType("deposit.completed") || bus.ValidEventType("Deposit..x") {
		t.Fatal("event type validation")
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := bus.AuditEntry{Brand: "baku", Kind: bus.KindCampaign, Name: "welcome", Generation: 3, Action: bus.AuditUpdated,
		Changes: []bus.FieldChange{{Path: "spec.paused", After: []byte("true")}}}
	b, err := bus.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := bus.Decode[bus.AuditEntry](b)
	if err != nil || out.Generation != 3 || out.Changes[0].Path != "spec.paused" {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	if _, err := bus.Decode[bus.AuditEntry]([]byte("{")); err == nil {
		t.Fatal("bad JSON decoded")
	}
}
