package email_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/email"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
)

// relay is a real SMTP server on loopback: STARTTLS with its own CA, AUTH PLAIN, and
// scripted refusals.
type relay struct {
	addr     string
	caPEM    []byte
	mu       sync.Mutex
	conns    int
	received [][]byte
	// refuse answers RCPT for an address with an SMTP error, n times (-1: always).
	refuse map[string]refusal
}

type refusal struct {
	err *smtp.SMTPError
	n   int
}

func startRelay(t *testing.T) *relay {
	r := &relay{refuse: map[string]refusal{}}
	cert, caPEM := selfSigned(t)
	r.caPEM = caPEM
	s := smtp.NewServer(r)
	s.Domain = "localhost"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go func() { _ = s.Serve(counting{l, r}) }()
	t.Cleanup(func() { _ = s.Close() })
	return r
}

func (r *relay) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{r: r}, nil }

// counting counts the connections the relay accepts.
type counting struct {
	net.Listener
	r *relay
}

func (c counting) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err == nil {
		c.r.mu.Lock()
		c.r.conns++
		c.r.mu.Unlock()
	}
	return conn, err
}

type session struct {
	r      *relay
	authed bool
	to     string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "croupier" || pass != "relay-pass" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.authed = true
		return nil
	}), nil
}
func (s *session) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if f, ok := s.r.refuse[to]; ok && f.n != 0 {
		f.n--
		s.r.refuse[to] = f
		return f.err
	}
	s.to = to
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.received = append(s.r.received, b)
	s.r.mu.Unlock()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func (r *relay) messages() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.received...)
}

func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}

var factories = map[crmv1.ProviderType]channel.Factory{
	crmv1.ProviderSMTP: email.NewSMTP, crmv1.ProviderSendGrid: email.NewSendGrid, crmv1.ProviderMailgun: email.NewMailgun,
}

func policy(providers ...crmv1.Provider) *bus.ChannelPolicyConfig {
	return &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelEmail, Providers: providers,
		Sender: &crmv1.SenderDefaults{From: "bonus@example-casino.az", FromName: "Baku Casino", ReplyTo: "help@example-casino.az"},
		Retry: &crmv1.RetryPolicy{MaxAttempts: 3, InitialBackoff: &metav1.Duration{Duration: 20 * time.Millisecond},
			MaxBackoff: &metav1.Duration{Duration: time.Second}}}}
}

func welcome(decision, player, to string) bus.DeliveryJob {
	return bus.DeliveryJob{DecisionID: decision, Player: player, Campaign: "welcome", Step: "send", Locale: "az",
		TemplateID: "welcome/email/az", To: to, Subject: "Xoş gəldiniz, Leyla!",
		HTML: `<h1>Salam Leyla</h1><p>100% bonus: <a href="https://example-casino.az/bonus">götür</a></p>`,
		Data: map[string]string{"category": "marketing", "unsubscribeURL": "https://crm.example-casino.az/v1/brands/baku/unsubscribe?t=abc"}}
}

func TestSMTPDeliversSignedMessagesOverReusedConnections(t *testing.T) {
	rl := startRelay(t)
	dkimKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(dkimKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(&dkimKey.PublicKey)
	secrets := channel.StaticSecrets{"baku/relay": {email.SecretUsername: []byte("croupier"), email.SecretPassword: []byte("relay-pass"),
		email.SecretCACert: rl.caPEM, email.SecretDKIMKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}}
	r := channeltest.Run(t, policy(crmv1.Provider{Name: "relay", Type: crmv1.ProviderSMTP, Endpoint: rl.addr,
		SecretRef: &crmv1.LocalObjectReference{Name: "relay"},
		Options:   map[string]string{email.OptionDKIMDomain: "example-casino.az", email.OptionSelector: "crm", email.OptionPoolSize: "2"}}), factories, secrets)
	rl.mu.Lock()
	rl.refuse["p-0@example.az"] = refusal{err: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}, n: 1}
	rl.refuse["nobody@example.az"] = refusal{err: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, n: -1}
	rl.mu.Unlock()
	const n = 20
	for i := range n {
		r.Publish(t, welcome(fmt.Sprintf("d-%d", i), fmt.Sprintf("p-%d", i), fmt.Sprintf("p-%d@example.az", i)))
	}
	r.Publish(t, welcome("d-nobody", "p-x", "nobody@example.az"))
	r.Drained(t)

	msgs := rl.messages()
	if len(msgs) != n {
		t.Fatalf("the relay received %d messages, want %d", len(msgs), n)
	}
	if rl.conns > 2 {
		t.Errorf("%d SMTP connections for %d messages with a pool of 2", rl.conns, n+1)
	}
	lookup := func(domain string) ([]string, error) {
		if domain != "crm._domainkey.example-casino.az" {
			return nil, errors.New("no such record")
		}
		return []string{"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pubDER)}, nil
	}
	for _, raw := range msgs {
		v, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil || len(v) != 1 || v[0].Err != nil || v[0].Domain != "example-casino.az" {
			t.Fatalf("DKIM: %v %+v", err, v)
		}
		mr, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := mr.Header.Subject()
		from, _ := mr.Header.AddressList("From")
		id, _ := mr.Header.MessageID()
		if subj != "Xoş gəldiniz, Leyla!" || len(from) != 1 || from[0].Name != "Baku Casino" || !strings.HasSuffix(id, ".email@example-casino.az") ||
			mr.Header.Get("List-Unsubscribe") != "<https://crm.example-casino.az/v1/brands/baku/unsubscribe?t=abc>" ||
			mr.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || mr.Header.Get(email.DecisionHeader) == "" {
			t.Fatalf("headers: subject %q from %v id %q\n%s", subj, from, id, raw)
		}
		var types []string
		var text string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
			types = append(types, ct)
			b, _ := io.ReadAll(p.Body)
			if ct == "text/plain" {
				text = string(b)
			}
		}
		if strings.Join(types, ",") != "text/plain,text/html" || !strings.Contains(text, "Salam Leyla") || !strings.Contains(text, "götür (https://example-casino.az/bonus)") {
			t.Fatalf("parts %v, text %q", types, text)
		}
	}
	// A 451 is retried; a 550 rejects the message and the owner is told.
	if got := channeltest.Results(r.Attempts(t, "p-0")); got != "relay:retry:1 relay:sent:2" {
		t.Errorf("p-0 attempts %s", got)
	}
	if got := channeltest.Results(r.Attempts(t, "p-x")); got != "relay:failed:1" {
		t.Errorf("rejected attempts %s", got)
	}
	if f := r.Events(t, "p-x", "delivery.failed"); len(f) != 1 || !strings.Contains(string(f[0].Data), "SMTP 550") {
		t.Errorf("delivery.failed %+v", f)
	}
	bustest.AssertNowhere(t, r.JS, "@example.az")
}

func TestWrongRelayPasswordFailsOverToSendGrid(t *testing.T) {
	rl := startRelay(t)
	var mu sync.Mutex
	var got []email.SendGridMail
	var auth []string
	sg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m email.SendGridMail
		if r.URL.Path != "/v3/mail/send" || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&m) != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got, auth = append(got, m), append(auth, r.Header.Get("Authorization"))
		n := len(got)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(500) // once down, then back
			return
		}
		w.Header().Set("X-Message-Id", "sg-"+fmt.Sprint(n))
		w.WriteHeader(202)
	}))
	t.Cleanup(sg.Close)
	secrets := channel.StaticSecrets{"baku/relay": {email.SecretUsername: []byte("croupier"), email.SecretPassword: []byte("wrong"), email.SecretCACert: rl.caPEM},
		"baku/sendgrid": {email.SecretAPIKey: []byte("SG.key")}}
	r := channeltest.Run(t, policy(
		crmv1.Provider{Name: "relay", Type: crmv1.ProviderSMTP, Endpoint: rl.addr, SecretRef: &crmv1.LocalObjectReference{Name: "relay"}},
		crmv1.Provider{Name: "sendgrid", Type: crmv1.ProviderSendGrid, Endpoint: sg.URL + "/v3/mail/send", SecretRef: &crmv1.LocalObjectReference{Name: "sendgrid"}},
	), factories, secrets)
	r.Publish(t, welcome("d-1", "p-1", "p-1@example.az"))
	r.Drained(t)
	if got := channeltest.Results(r.Attempts(t, "p-1")); got != "relay:failover:1 sendgrid:retry:1 sendgrid:sent:2" {
		t.Fatalf("attempts %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	m := got[1]
	if auth[1] != "Bearer SG.key" || m.From.Email != "bonus@example-casino.az" || m.From.Name != "Baku Casino" || m.ReplyTo == nil ||
		len(m.Personalizations) != 1 || m.Personalizations[0].To[0].Email != "p-1@example.az" || m.Subject != "Xoş gəldiniz, Leyla!" ||
		len(m.Content) != 2 || m.Content[0].Type != "text/plain" || m.Content[1].Type != "text/html" ||
		m.CustomArgs["decision_id"] != "d-1" || m.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("SendGrid request %+v", m)
	}
	if oc := r.Attempts(t, "p-1"); oc[2].ProviderID != "sg-2" {
		t.Fatalf("provider id %q", oc[2].ProviderID)
	}
}

func TestMailgunFormAuthAndAMalformedAnswer(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	mg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "api" || pass != "mg-key" {
			w.WriteHeader(401)
			return
		}
		if r.URL.Path != "/v3/mg.example-casino.az/messages" || r.ParseForm() != nil {
			w.WriteHeader(404)
			return
		}
		mu.Lock()
		forms = append(forms, r.PostForm)
		mu.Unlock()
		if r.PostForm.Get("to") == "p-2@example.az" {
			_, _ = w.Write([]byte(`{"id": <not json`)) // accepted, unreadable
			return
		}
		_, _ = w.Write([]byte(`{"id":"<20261122.1@mg.example-casino.az>","message":"Queued. Thank you."}`))
	}))
	t.Cleanup(mg.Close)
	r := channeltest.Run(t, policy(crmv1.Provider{Name: "mailgun", Type: crmv1.ProviderMailgun, Endpoint: mg.URL,
		SecretRef: &crmv1.LocalObjectReference{Name: "mg"}, Options: map[string]string{email.OptionDomain: "mg.example-casino.az"}}),
		factories, channel.StaticSecrets{"baku/mg": {email.SecretAPIKey: []byte("mg-key")}})
	r.Publish(t, welcome("d-1", "p-1", "p-1@example.az"))
	r.Publish(t, welcome("d-2", "p-2", "p-2@example.az"))
	r.Drained(t)
	oc := r.Attempts(t, "p-1")
	if channeltest.Results(oc) != "mailgun:sent:1" || oc[0].ProviderID != "<20261122.1@mg.example-casino.az>" {
		t.Fatalf("p-1 attempts %+v", oc)
	}
	// A 200 whose body cannot be read was still accepted: sent once, not again.
	if got := channeltest.Results(r.Attempts(t, "p-2")); got != "mailgun:sent:1" {
		t.Fatalf("p-2 attempts %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	f := forms[0]
	if len(forms) != 2 || f.Get("from") != `"Baku Casino" <bonus@example-casino.az>` || f.Get("v:decision_id") == "" || f.Get("o:tracking") != "no" ||
		f.Get("h:List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || !strings.Contains(f.Get("text"), "Salam Leyla") || f.Get("html") == "" {
		t.Fatalf("%d forms, first %v", len(forms), f)
	}
}
