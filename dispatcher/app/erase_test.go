package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/nats-io/nats.go/jetstream"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/app"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/email"
	"github.com/croupier-crm/croupier/dispatcher/channel/inapp"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/dispatcher/players"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/datakey"
)

// TestErasureReachesTheDisk: a player's email, phone and push token travel through every
// place the dispatcher keeps them (EVENTS, DEADLETTER, the profile rewritten several
// times, the flow's data, an intent, a delivery job, the inbox); after the erasure request
// none of them can be found in the raw files of the NATS store, while another player's
// data still can (so the scan reads what the store holds).
func TestErasureReachesTheDisk(t *testing.T) {
	srv := bustest.Start(t, parts)
	_, js := srv.Connect(t)
	ctx := context.Background()
	// The email provider refuses every message, after reading it: the owner then fails
	// over to the inbox, so a job with the address and one with the body both pass.
	var mu sync.Mutex
	var provider []string
	sg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		provider = append(provider, string(b))
		mu.Unlock()
		w.WriteHeader(400)
	}))
	defer sg.Close()
	cfg := bustest.KV(t, js, bus.BucketConfig)
	rec, err := bus.Decode[bus.ConfigRecord](bustest.SamplePolicyRecord(t, "baku"))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range rec.PreferencePolicy.Spec.Categories {
		if c.Category == crmv1.CategoryService {
			rec.PreferencePolicy.Spec.Categories[i].Channels = []crmv1.CategoryChannel{{Channel: crmv1.ChannelEmail, Default: crmv1.OptedIn}, {Channel: crmv1.ChannelInApp, Default: crmv1.OptedIn}}
		}
	}
	body := "Salam {{ .Player.FirstName }}, hesabınız açıldı."
	putConfig(t, cfg, "baku", []bus.ConfigRecord{rec,
		{Kind: "ChannelPolicy", Brand: "baku", Name: "inapp", ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelInApp,
			Providers: []crmv1.Provider{{Name: "inbox", Type: crmv1.ProviderInApp}}}}},
		{Kind: "ChannelPolicy", Brand: "baku", Name: "email", ChannelPolicy: &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelEmail,
			Sender:    &crmv1.SenderDefaults{From: "hello@example-casino.az"},
			Providers: []crmv1.Provider{{Name: "sendgrid", Type: crmv1.ProviderSendGrid, Endpoint: sg.URL, SecretRef: &crmv1.LocalObjectReference{Name: "sg"}}}}}},
		{Kind: "Campaign", Brand: "baku", Name: "welcome", UID: "uid-welcome", Campaign: &bus.CampaignConfig{Spec: crmv1.CampaignSpec{
			Category: crmv1.CategoryService, Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "player.registered"}},
			Steps: []crmv1.Step{{Name: "hello", Send: &crmv1.SendStep{Content: "hello"}}},
			Contents: []crmv1.Content{{Name: "hello", Messages: []crmv1.Message{
				{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "Xoş gəlmisiniz", Body: body},
				{Channel: crmv1.ChannelInApp, Locale: "az", Subject: "Xoş gəlmisiniz", Body: body}}}}}}},
	}...)
	stop := startWith(t, srv, app.Options{Secrets: channel.StaticSecrets{"baku/sg": {email.SecretAPIKey: []byte("SG.key")}}})
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	// What each player's data must (p-7, erased) or may (p-8, kept) leave on the disk:
	// email, first name, phone, push token, Viber id.
	secrets := map[string][]string{
		"p-7": {"erase-me-7@example.az", "Ərasəmefirst", "+994501234567", "push-token-erase-me-7", "viber-erase-me-7"},
		"p-8": {"keep-me-8@example.az", "Keepmefirst"},
	}
	publish := func(player, id, typ, data string) {
		t.Helper()
		ev := `{"specversion":"1.0","id":"` + id + `","source":"pam.baku","type":"` + typ + `","subject":"` + player + `","data":` + data + `}`
		if _, err := js.Publish(ctx, bus.EventSubject("baku", player, typ), []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	for _, player := range []string{"p-7", "p-8"} {
		s := secrets[player]
		// The platform's JSON encoder writes non-ASCII letters as \u escapes: the store then
		// holds the name in that form, which the scan looks for too.
		publish(player, "reg-"+player, "player.registered", `{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"`+s[0]+`","attrs":{"firstName":"`+asciiJSON(s[1])+`"}}`)
	}
	s7 := secrets["p-7"]
	publish("p-7", "prof-1", "player.profile.updated", `{"phone":"`+s7[2]+`","viberId":"`+s7[4]+`","pushTokens":[{"platform":"android","token":"`+s7[3]+`"}]}`)
	for i := range 3 {
		publish("p-7", "dep-"+strconv.Itoa(i), "deposit.completed", `{"amount":"20.00","currency":"AZN","method":"card","depositId":"d-`+strconv.Itoa(i)+`"}`)
	}
	// Refused by the partition: they wait in DEADLETTER, with the addresses (p-8's keeps
	// the block from emptying, which would drop p-7's with it).
	publish("p-7", "bad-1", "player.profile.updated", `{"email":"`+s7[0]+`","vipLevel":"gold"}`)
	publish("p-8", "bad-2", "player.profile.updated", `{"email":"`+secrets["p-8"][0]+`","vipLevel":"gold"}`)

	keys := &datakey.Reader{KV: bustest.KV(t, js, bus.BucketKeys), Partitions: parts}
	store := &inapp.Store{KV: bustest.KV(t, js, bus.BucketInbox), Partitions: parts, Keys: keys}
	for _, player := range []string{"p-7", "p-8"} {
		s := secrets[player]
		bustest.Eventually(t, 30*time.Second, "the welcome in "+player+"'s inbox after email failed", func() bool {
			in, _, err := store.Get(ctx, "baku", player)
			return err == nil && len(in.Messages) == 1 && strings.Contains(in.Messages[0].Text, s[1])
		})
	}
	mu.Lock()
	sent := strings.Join(provider, "\n")
	mu.Unlock()
	if !strings.Contains(sent, s7[0]) || !strings.Contains(sent, s7[1]) {
		t.Errorf("the email provider did not get p-7's address and name (the sealed job was not opened): %q", sent)
	}
	playersKV := bustest.KV(t, js, bus.BucketPlayers)
	bustest.Eventually(t, 30*time.Second, "p-7's deposits and contact data applied", func() bool {
		p, ok := playerRecord(t, playersKV, keys, "p-7")
		return ok && p.DepositCount == 3 && len(p.PushTokens) == 1 && p.Phone == s7[2] && p.Email == s7[0]
	})
	dl, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, "the refused events in DEADLETTER", func() bool {
		info, err := dl.Info(ctx)
		return err == nil && info.State.Msgs >= 2
	})

	// The data keys as croupier-keys stores them: p-7's must leave the disk with the
	// erasure (what it sealed is then unreadable), p-8's stays.
	keysKV := bustest.KV(t, js, bus.BucketKeys)
	dek := map[string]string{}
	for _, player := range []string{"p-7", "p-8"} {
		e, err := keysKV.Get(ctx, bus.PlayerKey("baku", bus.Partition(player, parts), player))
		if err != nil {
			t.Fatalf("%s's data key: %v", player, err)
		}
		dek[player] = string(e.Value())
	}
	req, _ := json.Marshal(ingest.ErasureRequest("p-7", "privacy-officer@baku", "erase-7", time.Now()))
	if _, err := js.Publish(ctx, bus.EventSubject("baku", "p-7", ingest.TypeErasureRequested), req); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, "p-7's tombstone", func() bool {
		p, ok := playerRecord(t, playersKV, keys, "p-7")
		return ok && p.Erased
	})
	// The platform's events and dead letters of p-7 are overwritten by the eraser, outside
	// the partition's loop, once the tombstone is written.
	bustest.WaitAudit(t, js, "baku", "p-7", players.AuditOverwritten, time.Minute)
	// p-8 is untouched: their profile still opens.
	if p, ok := playerRecord(t, playersKV, keys, "p-8"); !ok || p.Email != secrets["p-8"][0] {
		t.Errorf("p-8 after p-7's erasure: %+v", p)
	}
	// The erasure is done when the tombstone is written; stop the dispatcher, then the
	// server, so every block the server buffers is on disk before the scan.
	stopped = true
	if err := stop(); err != nil {
		t.Error(err)
	}
	dir := srv.JetStreamConfig().StoreDir
	srv.Shutdown()
	srv.WaitForShutdown()
	s7 = append(s7, dek["p-7"])
	found := scanStore(t, dir, append(append([]string{dek["p-8"]}, s7...), secrets["p-8"]...))
	for _, s := range s7 {
		if files := found[s]; len(files) > 0 {
			what := strconv.Quote(s)
			if s == dek["p-7"] {
				what = "p-7's data key"
			}
			t.Errorf("after the erasure %s is still readable in %s", what, strings.Join(files, ", "))
		}
	}
	// p-8's data is in the store's files (in the events the platform sent): the scan reads
	// what the store holds.
	if len(found[secrets["p-8"][0]]) == 0 || len(found[dek["p-8"]]) == 0 {
		t.Errorf("the scan found no trace of p-8's address or data key, which were not erased: it does not read the store")
	}
}

// playerRecord reads a player's croupier-players record, its sealed part opened.
func playerRecord(t *testing.T, kv jetstream.KeyValue, keys *datakey.Reader, id string) (players.Player, bool) {
	t.Helper()
	ctx := context.Background()
	p, found, err := players.Read(ctx, kv, "baku", bus.Partition(id, parts), id, func(brand, player string, sealed []byte) ([]byte, error) {
		return keys.Open(ctx, brand, player, sealed)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return players.Player{}, false
	}
	return p, true
}

// forms are the ways a stored message can hold s: as it is, JSON-escaped (Go's encoder,
// and an encoder that writes every non-ASCII letter as a \u escape), and each of those
// base64-encoded (a []byte field in JSON, such as a dead letter's data) at each of the
// three alignments (the part of the encoding that depends on s alone).
func forms(s string) [][]byte {
	goJSON, _ := json.Marshal(s)
	texts := []string{s, string(goJSON[1 : len(goJSON)-1]), asciiJSON(s)}
	slices.Sort(texts)
	texts = slices.Compact(texts)
	var out [][]byte
	for _, text := range texts {
		out = append(out, []byte(text))
		for k := range 3 {
			enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), text...))
			if k > 0 {
				enc = enc[4:]
			}
			if len(enc) > 12 {
				out = append(out, []byte(enc[:len(enc)-4]))
			}
		}
	}
	return out
}

// asciiJSON is s as the inside of a JSON string whose every non-ASCII letter is a \u
// escape (UTF-16, surrogate pairs beyond the first plane).
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, "\\u%04x", u)
		}
	}
	return b.String()
}

// scanStore returns, for each of needles, the files under dir whose bytes hold it in one
// of its forms.
func scanStore(t *testing.T, dir string, needles []string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if slices.ContainsFunc(forms(n), func(f []byte) bool { return bytes.Contains(b, f) }) {
				rel, _ := filepath.Rel(dir, path)
				found[n] = append(found[n], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
