package devstack_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	playerstore "github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/datakey"
	"github.com/croupier-crm/croupier/internal/devstack"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	phoneRe = regexp.MustCompile(`\+[0-9]{8,15}`)
	tokenRe = regexp.MustCompile(`"(?:token|viberId|endpoint)":"([^"]{6,})"`)
)

// A make dev run with the traffic simulator: the dispatcher's and the manager's logs, the
// Kubernetes Events, the conditions and status of every object, and OUTCOMES hold none of
// the players' contact data (emails, phones, push tokens, as the players bucket holds
// them) and none of the brand's Secrets or the intake token.
func TestMakeDevRunLeaksNothing(t *testing.T) {
	logs := &syncBuffer{}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(logs, nil)))
	t.Cleanup(func() { ctrl.SetLogger(logr.Discard()) })
	const players = 300
	info, c := startStack(t, func(o *devstack.Options) { o.Players, o.Speed, o.Log = players, 720, logs })
	ctx := context.Background()
	nc, err := nats.Connect(info.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	outcomes := func() []*jetstream.RawStreamMsg {
		return bustest.ReadAll(t, js, bus.StreamOutcomes, bus.Root+".outcomes.>")
	}
	sent := map[string]int{}
	bustest.Eventually(t, 2*time.Minute, "50 messages sent over at least two channels", func() bool {
		clear(sent)
		n := 0
		for _, m := range outcomes() {
			var o bus.Outcome
			if json.Unmarshal(m.Data, &o) == nil && o.Kind == bus.OutcomeAttempt && o.Result == "sent" {
				sent[string(o.Channel)]++
				n++
			}
		}
		return len(sent) >= 2 && n >= 50
	})

	// What must not leak: every contact the players bucket holds, every Secret value. The
	// simulator registers its players while messages already flow: wait until the bucket
	// holds at least one contact value a player.
	forbidden := map[string]string{}
	kv := bustest.KV(t, js, bus.BucketPlayers)
	topo, err := bus.CheckTopology(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	dataKeys := bustest.DataKeys(t, js, topo.Partitions)
	// make dev wraps the data keys with the brand's key-encryption key (its Secret).
	var integration corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "baku-casino", Name: "baku-casino-integration"}, &integration); err != nil {
		t.Fatal(err)
	}
	kek, err := datakey.ParseKEK(integration.Data[secretkeys.DataKeyWrap])
	if err != nil {
		t.Fatalf("make dev's integration Secret: %v", err)
	}
	dataKeys.KEKs = func(context.Context, string) ([][]byte, error) { return [][]byte{kek}, nil }
	var playersRaw strings.Builder
	bustest.Eventually(t, 2*time.Minute, "every simulated player's contacts in the players bucket", func() bool {
		clear(forbidden)
		playersRaw.Reset()
		keys, err := kv.Keys(ctx)
		if err != nil {
			return false
		}
		for _, k := range keys {
			// <brand>.<part>.<player>: the record; the sealed part is read with it.
			toks := strings.Split(k, ".")
			if len(toks) != 3 {
				continue
			}
			part, _ := strconv.Atoi(toks[1])
			// The contact data is sealed: opened with the player's data key.
			p, found, err := playerstore.Read(ctx, kv, toks[0], part, toks[2], func(brand, player string, sealed []byte) ([]byte, error) {
				return dataKeys.Open(ctx, brand, player, sealed)
			})
			if err != nil || !found {
				continue
			}
			opened, _ := json.Marshal(p)
			raw := string(opened)
			playersRaw.WriteString(raw)
			for _, v := range emailRe.FindAllString(raw, -1) {
				forbidden[v] = "an email"
			}
			for _, v := range phoneRe.FindAllString(raw, -1) {
				forbidden[v] = "a phone number"
			}
			for _, m := range tokenRe.FindAllStringSubmatch(raw, -1) {
				forbidden[m[1]] = "a push token or address"
			}
		}
		return len(forbidden) >= players
	})
	contacts := len(forbidden)
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace("baku-casino")); err != nil {
		t.Fatal(err)
	}
	secretValues := 0
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			if len(v) < 12 {
				continue
			}
			forbidden[string(v)] = "Secret " + s.Name + "/" + k
			forbidden[base64.StdEncoding.EncodeToString(v)] = "Secret " + s.Name + "/" + k + " (base64)"
			secretValues++
		}
	}
	forbidden[info.Token] = "the intake token"
	if secretValues == 0 {
		t.Fatal("no Secret values to look for")
	}

	// Where they must not be.
	places := map[string]string{"logs": logs.String()}
	var events corev1.EventList
	if err := c.List(ctx, &events); err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(events.Items)
	places["Events"] = string(ev)
	var status strings.Builder
	objects := 0
	for _, l := range []client.ObjectList{&crmv1.CampaignList{}, &crmv1.SegmentList{}, &crmv1.ChannelPolicyList{}, &crmv1.PreferencePolicyList{}} {
		if err := c.List(ctx, l); err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(l)
		var items struct {
			Items []struct {
				Status json.RawMessage `json:"status"`
			} `json:"items"`
		}
		_ = json.Unmarshal(raw, &items)
		for _, it := range items.Items {
			status.Write(it.Status)
			objects++
		}
	}
	places["conditions and status"] = status.String()
	var oc strings.Builder
	out := outcomes()
	for _, m := range out {
		oc.Write(m.Data)
		oc.WriteByte('\n')
	}
	places["OUTCOMES"] = oc.String()

	// The control: the search finds the contacts where they belong.
	found := 0
	for v := range forbidden {
		if strings.Contains(playersRaw.String(), v) {
			found++
		}
	}
	if found < contacts {
		t.Fatalf("the search found %d of %d contacts in the players bucket itself", found, contacts)
	}
	leaks := 0
	for place, text := range places {
		if len(text) == 0 {
			t.Errorf("nothing to search in %s", place)
		}
		for v, what := range forbidden {
			if i := strings.Index(text, v); i >= 0 {
				leaks++
				if leaks <= 10 {
					t.Errorf("%s holds %s: ...%s...", place, what, text[max(0, i-80):min(len(text), i+len(v)+40)])
				}
			}
		}
	}
	logLines := strings.Count(places["logs"], "\n")
	t.Logf("sent by channel: %v", sent)
	t.Logf("searched %d log lines, %d Events, %d objects' status, %d OUTCOMES for %d contact values and %d Secret values: %d found",
		logLines, len(events.Items), objects, len(out), contacts, secretValues, leaks)
	if leaks == 0 {
		bustest.Reliability(t, "secrets and contact data", fmt.Sprintf("make dev with the simulator (%d players, a day at 720x)", players),
			fmt.Sprintf("%d contact values and %d Secret values searched in %d log lines, %d Events, %d objects' status, %d OUTCOMES", contacts, secretValues, logLines, len(events.Items), objects, len(out)),
			0, 0, "none found")
	}
}
