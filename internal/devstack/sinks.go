package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/retry"

	"github.com/emersion/go-smtp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// Local provider stand-ins: an SMTP sink that keeps every email as a file, and an HTTP
// sink for the SMS aggregator, FCM (its OAuth token endpoint and messages:send), the
// webhook channel and the casino's callbacks. The
// sample ChannelPolicies are pointed at them when make dev applies the samples.
type sinks struct {
	dir                                     string
	mails, sms, webhooks, callbacks, pushes atomic.Int64
	mu                                      sync.Mutex
	log                                     *os.File
	// dlr, once set, posts an SMS delivery report to the dispatcher as the aggregator does.
	dlr atomic.Pointer[func(brand, reference string)]
	// reports counts the delivery reports the dispatcher took.
	reports atomic.Int64
}

// devDLRToken authenticates the SMS sink's delivery reports (the dev Secret's dlrToken).
const devDLRToken = "dev-dlr"

// reportDeliveries makes the SMS sink answer each message with a delivery report to the
// dispatcher's smsRest webhook, a moment after taking it, as the aggregator does: so
// DELIVERED has figures on make dev. caFile verifies the dispatcher's certificate.
func (s *sinks) reportDeliveries(apiURL, caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no certificate", caFile)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	post := func(brand, reference string) {
		time.Sleep(200 * time.Millisecond)
		body, _ := json.Marshal(map[string]string{"reference": reference, "status": "DELIVRD"})
		for attempt := range 5 {
			req, _ := http.NewRequest("POST", apiURL+"/v1/brands/"+brand+"/webhooks/smsrest/dev-sms-sink", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+devDLRToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			what := ""
			if err == nil {
				answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
				resp.Body.Close()
				if resp.StatusCode < 300 {
					s.reports.Add(1)
					s.note("sms dlr delivered " + reference)
					return
				}
				what = resp.Status + " " + string(answer)
			} else {
				what = err.Error()
			}
			s.note("sms dlr refused (" + what + "), attempt " + strconv.Itoa(attempt+1))
			time.Sleep(time.Duration(attempt+1) * time.Second)
		}
	}
	s.dlr.Store(&post)
	return nil
}

func startSinks(ctx context.Context, state, smtpSinkAddr, httpSinkAddr string) (*sinks, error) {
	s := &sinks{dir: filepath.Join(state, "mail")}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(state, "sinks.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	s.log = f
	srv := smtp.NewServer(s)
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	l, err := net.Listen("tcp", smtpSinkAddr)
	if err != nil {
		return nil, fmt.Errorf("SMTP sink on %s: %w", smtpSinkAddr, err)
	}
	go func() { _ = srv.Serve(l) }()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sms/{brand}", func(w http.ResponseWriter, r *http.Request) {
		n := s.sms.Add(1)
		body := s.record("sms", r)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": fmt.Sprintf("dev-sms-%d", n)})
		var msg struct {
			Reference string `json:"reference"`
		}
		if dlr := s.dlr.Load(); dlr != nil && json.Unmarshal(body, &msg) == nil && msg.Reference != "" {
			go (*dlr)(r.PathValue("brand"), msg.Reference)
		}
	})
	mux.HandleFunc("POST /webhook/messages", func(w http.ResponseWriter, r *http.Request) {
		s.webhooks.Add(1)
		s.record("webhook", r)
	})
	// FCM HTTP v1: the OAuth token endpoint the dev service account names, and messages:send.
	mux.HandleFunc("POST /fcm/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "dev-fcm-token", "token_type": "Bearer", "expires_in": 3600})
	})
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer dev-fcm-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n := s.pushes.Add(1)
		s.record("push", r)
		_ = json.NewEncoder(w).Encode(map[string]any{"name": fmt.Sprintf("projects/%s/messages/dev-%d", r.PathValue("project"), n)})
	})
	mux.HandleFunc("POST /callbacks/{kind}", func(w http.ResponseWriter, r *http.Request) {
		s.callbacks.Add(1)
		s.record("callback "+r.PathValue("kind"), r)
	})
	hs := &http.Server{Addr: httpSinkAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	hl, err := net.Listen("tcp", httpSinkAddr)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("HTTP sink on %s: %w", httpSinkAddr, err)
	}
	go func() { _ = hs.Serve(hl) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
		_ = hs.Close()
		_ = f.Close()
	}()
	return s, nil
}

// note writes a line of the sinks' own to sinks.log.
func (s *sinks) note(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.log, "%s %s\n", time.Now().Format(time.RFC3339), line)
}

func (s *sinks) record(kind string, r *http.Request) []byte {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.log, "%s %s %s\n", time.Now().Format(time.RFC3339), kind, body)
	return body
}

// NewSession implements smtp.Backend: every message is accepted and written to a file.
func (s *sinks) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{s: s}, nil }

type mailSession struct{ s *sinks }

func (m *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (m *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (m *mailSession) Reset()                               {}
func (m *mailSession) Logout() error                        { return nil }
func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	n := m.s.mails.Add(1)
	return os.WriteFile(filepath.Join(m.s.dir, fmt.Sprintf("%s-%06d.eml", time.Now().Format("20060102-150405"), n)), b, 0o644)
}

// pointAtSinks makes the sample brand's email, SMS, push (FCM) and webhook policies use
// the local sinks.
func pointAtSinks(ctx context.Context, c client.Client, smtpSinkAddr, httpSinkAddr string) error {
	secret := func(name string, data map[string][]byte) error {
		err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: brand, Name: name}, Data: data})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// A state directory from an earlier version: add the keys it lacks.
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var sec corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: brand, Name: name}, &sec); err != nil {
				return err
			}
			missing := false
			for k, v := range data {
				if _, ok := sec.Data[k]; !ok {
					if sec.Data == nil {
						sec.Data = map[string][]byte{}
					}
					sec.Data[k], missing = v, true
				}
			}
			if !missing {
				return nil
			}
			return c.Update(ctx, &sec)
		})
	}
	if err := secret("dev-sms-sink", map[string][]byte{secretkeys.Token: []byte("dev"), secretkeys.DLRToken: []byte(devDLRToken)}); err != nil {
		return err
	}
	if err := secret("dev-webhook-sink", map[string][]byte{secretkeys.HMACKey: []byte("dev-webhook-key")}); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": brand, "client_email": "croupier-dev@" + brand + ".iam.example",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "private_key_id": "dev",
		"token_uri": "http://" + httpSinkAddr + "/fcm/token"})
	if err := secret("dev-fcm-sink", map[string][]byte{secretkeys.ServiceAccount: sa}); err != nil {
		return err
	}
	edits := map[string]func(*crmv1.ChannelPolicySpec){
		"email": func(s *crmv1.ChannelPolicySpec) {
			s.Providers = []crmv1.Provider{{Name: "dev-smtp-sink", Type: crmv1.ProviderSMTP, Endpoint: smtpSinkAddr,
				Options: map[string]string{"tls": "none"}, Cost: s.Providers[0].Cost}}
		},
		"sms": func(s *crmv1.ChannelPolicySpec) {
			p := s.Providers[0]
			p.Name, p.Endpoint, p.SecretRef, p.RateLimit = "dev-sms-sink", "http://"+httpSinkAddr+"/sms/"+brand, &crmv1.LocalObjectReference{Name: "dev-sms-sink"}, nil
			s.Providers = []crmv1.Provider{p}
		},
		"push": func(s *crmv1.ChannelPolicySpec) {
			s.Providers = []crmv1.Provider{{Name: "dev-push-sink", Type: crmv1.ProviderFCM, Endpoint: "http://" + httpSinkAddr,
				SecretRef: &crmv1.LocalObjectReference{Name: "dev-fcm-sink"}}}
		},
		"webhook": func(s *crmv1.ChannelPolicySpec) {
			s.Providers = []crmv1.Provider{{Name: "dev-webhook-sink", Type: crmv1.ProviderWebhook, Endpoint: "http://" + httpSinkAddr + "/webhook/messages",
				SecretRef: &crmv1.LocalObjectReference{Name: "dev-webhook-sink"}}}
			base := "http://" + httpSinkAddr + "/callbacks/"
			s.Callbacks = &crmv1.Callbacks{Sent: base + "sent", Delivered: base + "delivered", Failed: base + "failed",
				BonusActivated: base + "bonusActivated", RewardGranted: base + "rewardGranted", SecretRef: &crmv1.LocalObjectReference{Name: "dev-webhook-sink"}}
		},
	}
	for name, edit := range edits {
		// The manager writes the status meanwhile: read again on a conflict.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var cp crmv1.ChannelPolicy
			if err := c.Get(ctx, client.ObjectKey{Namespace: brand, Name: name}, &cp); err != nil {
				return err
			}
			if len(cp.Spec.Providers) > 0 && cp.Spec.Providers[0].Name == "dev-"+map[string]string{"email": "smtp", "sms": "sms", "push": "push", "webhook": "webhook"}[name]+"-sink" {
				return nil // pointed at the sinks by an earlier make dev
			}
			edit(&cp.Spec)
			return c.Update(ctx, &cp)
		})
		if err != nil {
			return fmt.Errorf("ChannelPolicy %s: %w", name, err)
		}
	}
	return nil
}
