package devstack_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/devstack"
	"github.com/croupier-crm/croupier/internal/freeport"
	"github.com/croupier-crm/croupier/internal/testenv"
)

func freeAddr(t *testing.T) string { return freeport.Addr(t) }

// mailTo returns the decoded subject and the body of an email the SMTP sink received for
// the address (empty when none).
func mailTo(dir, addr string) (subject, body string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil || !strings.Contains(m.Header.Get("To"), addr) {
			continue
		}
		subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		b, _ := io.ReadAll(m.Body)
		return subject, string(b)
	}
	return "", ""
}

// startStack runs make dev's stack headless (no simulator) for the test on free ports and
// returns where it is and a client of its API server.
func startStack(t *testing.T, tweaks ...func(*devstack.Options)) (devstack.Info, client.Client) {
	t.Helper()
	state, err := os.MkdirTemp("", "croupier-devstack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) }) // after the stack stopped (cleanups run last first)
	info, c, stop := runStack(t, append([]func(*devstack.Options){func(o *devstack.Options) { o.State = state }}, tweaks...)...)
	t.Cleanup(stop)
	return info, c
}

// runStack starts a stack on the repository's config and returns a client and its stop,
// which waits until everything stopped.
func runStack(t *testing.T, tweaks ...func(*devstack.Options)) (devstack.Info, client.Client, func()) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		home, _ := os.UserHomeDir()
		t.Setenv("KUBEBUILDER_ASSETS", filepath.Join(home, ".cache", "croupier", "k8s-"+testenv.K8sVersion))
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan devstack.Info, 1)
	done := make(chan error, 1)
	go func() {
		o := devstack.Options{Root: filepath.Join("..", ".."), NATSPort: -1,
			APIAddr: freeAddr(t), HealthAddr: freeAddr(t), MetricsAddr: freeAddr(t), ProbeAddr: freeAddr(t),
			SMTPAddr: freeAddr(t), HTTPSinkAddr: freeAddr(t), ConsoleAddr: freeAddr(t), StatsInterval: 500 * time.Millisecond, Ready: ready}
		for _, tw := range tweaks {
			tw(&o)
		}
		done <- devstack.Run(ctx, o)
	}()
	var info devstack.Info
	exited := false
	stopped := false
	stop := func() {
		cancel()
		if exited || stopped {
			return
		}
		stopped = true
		if err := <-done; err != nil {
			t.Errorf("the stack stopped with %v", err)
		}
	}
	select {
	case info = <-ready:
	case err := <-done:
		exited = true
		t.Fatalf("the stack did not start: %v", err)
	case <-time.After(2 * time.Minute):
		stop()
		t.Fatal("the stack did not start within 2 minutes")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return info, c, stop
}

// Editing config/samples and running make dev again applies the edit (server-side apply):
// the old object is not kept, the sinks stay wired, the data stays.
func TestRestartAppliesEditedSamples(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "config"), os.DirFS(filepath.Join("..", "..", "config"))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	onRoot := func(o *devstack.Options) { o.Root, o.State = root, state }
	campaign := func(c client.Client) *crmv1.Campaign {
		var cp crmv1.Campaign
		if err := c.Get(ctx, client.ObjectKey{Namespace: "baku-casino", Name: "daily-free-spins"}, &cp); err != nil {
			t.Fatal(err)
		}
		return &cp
	}
	_, c, stop := runStack(t, onRoot)
	t.Cleanup(stop)
	first := campaign(c)
	const was = "Daily free spins for slot lovers at 10:00 Baku time"
	if first.Spec.Description != was {
		t.Fatalf("description %q", first.Spec.Description)
	}
	stop()

	samples := filepath.Join(root, "config", "samples", "baku-casino.yaml")
	raw, err := os.ReadFile(samples)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), was, "Daily free spins at 10:00, edited", 1)
	if edited == string(raw) {
		t.Fatal("the sample's description is not in the file")
	}
	if err := os.WriteFile(samples, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	_, c, stop = runStack(t, onRoot)
	t.Cleanup(stop)
	again := campaign(c)
	if again.Spec.Description != "Daily free spins at 10:00, edited" || again.UID != first.UID {
		t.Fatalf("after the restart: description %q, uid %s (was %s)", again.Spec.Description, again.UID, first.UID)
	}
	var email crmv1.ChannelPolicy
	if err := c.Get(ctx, client.ObjectKey{Namespace: "baku-casino", Name: "email"}, &email); err != nil {
		t.Fatal(err)
	}
	if email.Spec.Providers[0].Name != "dev-smtp-sink" {
		t.Fatalf("the email policy is no longer pointed at the local sink: %+v", email.Spec.Providers)
	}
}

// make dev's stack, headless (no simulator): a Campaign applied through the API server
// reacts to a registration sent to the HTTPS intake with the right localized email at the
// local SMTP sink, and the Campaign's status counters move.
func TestLocalStackHeadless(t *testing.T) {
	clock := &fakeClock{}
	info, c := startStack(t, func(o *devstack.Options) { o.Now = clock.Now })
	ctx := context.Background()
	cp := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "baku-casino", Name: "ru-welcome"}, Spec: crmv1.CampaignSpec{
		Category: crmv1.CategoryService, Priority: 60,
		Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "player.registered", Condition: `player.id.startsWith("e2e-")`}},
		Steps:   []crmv1.Step{{Name: "hello", Send: &crmv1.SendStep{Content: "hello", Channels: []crmv1.Channel{crmv1.ChannelEmail}}}},
		Contents: []crmv1.Content{{Name: "hello", Messages: []crmv1.Message{
			{Channel: crmv1.ChannelEmail, Locale: "az", Subject: "Xoş gəlmisiniz", Body: "Salam, {{ .Player.FirstName }}!"},
			{Channel: crmv1.ChannelEmail, Locale: "ru", Subject: "Добро пожаловать", Body: "Здравствуйте, {{ .Player.FirstName }}!"},
		}}}}}
	push := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "baku-casino", Name: "kyc-push"}, Spec: crmv1.CampaignSpec{
		Category: crmv1.CategoryService, Priority: 60,
		Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "kyc.passed", Condition: `player.id.startsWith("e2e-")`}},
		Steps:   []crmv1.Step{{Name: "tell", Send: &crmv1.SendStep{Content: "tell", Channels: []crmv1.Channel{crmv1.ChannelPush}}}},
		Contents: []crmv1.Content{{Name: "tell", Messages: []crmv1.Message{
			{Channel: crmv1.ChannelPush, Locale: "az", Subject: "KYC", Body: "Təsdiqləndi"},
			{Channel: crmv1.ChannelPush, Locale: "ru", Subject: "KYC", Body: "Подтверждено"},
		}}}}}
	// By SMS, whose make dev sink answers with delivery reports as the aggregator does.
	smsCp := &crmv1.Campaign{ObjectMeta: metav1.ObjectMeta{Namespace: "baku-casino", Name: "kyc-sms"}, Spec: crmv1.CampaignSpec{
		Category: crmv1.CategoryService, Priority: 60,
		Trigger: crmv1.Trigger{Event: &crmv1.EventTrigger{Type: "kyc.passed", Condition: `player.id.startsWith("e2e-")`}},
		Steps:   []crmv1.Step{{Name: "tell", Send: &crmv1.SendStep{Content: "tell", Channels: []crmv1.Channel{crmv1.ChannelSMS}}}},
		Contents: []crmv1.Content{{Name: "tell", Messages: []crmv1.Message{
			{Channel: crmv1.ChannelSMS, Locale: "az", Body: "BakuCasino: KYC tesdiqlendi"},
			{Channel: crmv1.ChannelSMS, Locale: "ru", Body: "BakuCasino: KYC podtverzhden"},
		}}}}}
	for _, x := range []*crmv1.Campaign{cp, push, smsCp} {
		if err := c.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
		bustest.Eventually(t, 30*time.Second, "the Campaign Ready", func() bool {
			_ = c.Get(ctx, client.ObjectKeyFromObject(x), x)
			for _, cond := range x.Status.Conditions {
				if cond.Type == crmv1.ConditionReady && cond.Status == metav1.ConditionTrue {
					return true
				}
			}
			return false
		})
	}
	event := fmt.Sprintf(`{"specversion":"1.0","id":"e2e-reg-1","source":"pam.baku-casino","type":"player.registered","subject":"e2e-olga","time":%q,
		"data":{"country":"AZ","language":"ru","timeZone":"Asia/Baku","currency":"AZN","email":"olga@example.az","attrs":{"firstName":"Ольга"}}}`,
		time.Now().UTC().Format(time.RFC3339))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // make dev's self-signed certificate
	send := func(event string) bool {
		req, _ := http.NewRequest("POST", info.APIURL+"/v1/brands/baku-casino/events", bytes.NewBufferString(event))
		req.Header.Set("Authorization", "Bearer "+info.Token)
		req.Header.Set("Content-Type", "application/cloudevents+json")
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode == 202
	}
	bustest.Eventually(t, 20*time.Second, "the intake accepts the registration", func() bool { return send(event) })
	var subject, body string
	bustest.Eventually(t, 30*time.Second, "the Russian email at the SMTP sink", func() bool {
		subject, body = mailTo(info.MailDir, "olga@example.az")
		return body != ""
	})
	if subject != "Добро пожаловать" {
		t.Fatalf("subject %q", subject)
	}
	if !strings.Contains(body, "Здравствуйте") && !strings.Contains(body, "=D0=97") {
		t.Fatalf("body %q", body)
	}
	// Template injection through a player field: the name is text, never a template.
	inject := fmt.Sprintf(`{"specversion":"1.0","id":"e2e-reg-2","source":"pam.baku-casino","type":"player.registered","subject":"e2e-inject","time":%q,
		"data":{"country":"AZ","language":"az","timeZone":"Asia/Baku","currency":"AZN","email":"inject@example.az","attrs":{"firstName":"{{ .Player.Email }}{{ template \"x\" }}"}}}`,
		time.Now().UTC().Format(time.RFC3339))
	if !send(inject) {
		t.Fatal("the intake refused the registration with a template as the name")
	}
	var injected string
	bustest.Eventually(t, 30*time.Second, "the email of the player named like a template", func() bool {
		_, injected = mailTo(info.MailDir, "inject@example.az")
		return injected != ""
	})
	if !strings.Contains(injected, "Salam, {{ .Player.Email }}") || strings.Contains(injected, "inject@example.az") {
		t.Fatalf("a name that looks like a template was executed: %q", injected)
	}
	// The push stand-in speaks FCM HTTP v1 (OAuth token, then messages:send).
	at := time.Now().UTC().Format(time.RFC3339)
	for _, ev := range []string{
		`{"specversion":"1.0","id":"e2e-prof-1","source":"pam.baku-casino","type":"player.profile.updated","subject":"e2e-olga","time":"` + at + `","data":{"phone":"+994501112233","pushTokens":[{"platform":"android","token":"fcm-olga"}]}}`,
		`{"specversion":"1.0","id":"e2e-kyc-1","source":"pam.baku-casino","type":"kyc.passed","subject":"e2e-olga","time":"` + at + `","data":{}}`,
	} {
		if !send(ev) {
			t.Fatalf("the intake refused %s", ev)
		}
	}
	bustest.Eventually(t, 30*time.Second, "the push at the FCM stand-in", func() bool {
		raw, _ := os.ReadFile(filepath.Join(filepath.Dir(info.MailDir), "sinks.log"))
		return strings.Contains(string(raw), `"token":"fcm-olga"`) && strings.Contains(string(raw), "Подтверждено")
	})
	bustest.Eventually(t, 30*time.Second, "the status counters", func() bool {
		_ = c.Get(ctx, client.ObjectKeyFromObject(cp), cp)
		return cp.Status.Counters != nil && cp.Status.Counters.Targeted == 2 && cp.Status.Counters.Sent == 2 // olga and the template-named player
	})
	// The SMS sink's delivery report reaches the campaign's status: sent and delivered.
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(filepath.Join(filepath.Dir(info.MailDir), "sinks.log"))
			for _, l := range strings.Split(string(raw), "\n") {
				if strings.Contains(l, " sms ") {
					t.Logf("sink: %s", l)
				}
			}
			t.Logf("kyc-sms counters: %+v", smsCp.Status.Counters)
		}
	})
	bustest.Eventually(t, 60*time.Second, "the SMS delivered in the status", func() bool {
		_ = c.Get(ctx, client.ObjectKeyFromObject(smsCp), smsCp)
		return smsCp.Status.Counters != nil && smsCp.Status.Counters.Sent == 1 && smsCp.Status.Counters.Delivered == 1
	})
	checkScheduledReport(t, info, c, clock)
}
