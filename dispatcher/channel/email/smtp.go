package email

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// Secret keys and options of the smtp provider.
const (
	SecretUsername   = secretkeys.Username
	SecretPassword   = secretkeys.Password
	SecretDKIMKey    = secretkeys.DKIMKey // PEM, PKCS#8 (RSA or Ed25519) or PKCS#1 RSA
	SecretCACert     = secretkeys.CACert  // PEM: a private relay's CA
	OptionTLS        = "tls"              // starttls (default), implicit, or none (loopback relays only)
	OptionPoolSize   = "poolSize"         // connections kept open (default 4)
	OptionDKIMDomain = "dkimDomain"
	OptionSelector   = "dkimSelector"
	OptionHelo       = "helo"
)

// SMTP sends through one relay, reusing up to poolSize connections.
type SMTP struct {
	addr, mode, helo string
	tls              *tls.Config
	user, pass       string
	dkim             *dkim.SignOptions
	// pool holds idle connections; slots bound the open ones to poolSize.
	pool    chan *smtp.Client
	slots   chan struct{}
	timeout time.Duration
}

// NewSMTP is the channel.Factory of type smtp: endpoint is host:port.
func NewSMTP(cfg channel.Config) (channel.Provider, error) {
	host, _, err := net.SplitHostPort(cfg.Provider.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %q is not host:port", cfg.Provider.Endpoint)
	}
	o := cfg.Provider.Options
	s := &SMTP{addr: cfg.Provider.Endpoint, mode: o[OptionTLS], helo: o[OptionHelo], timeout: cfg.Timeout,
		user: string(cfg.Secret[SecretUsername]), pass: string(cfg.Secret[SecretPassword]),
		tls: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}}
	if s.mode == "" {
		s.mode = "starttls"
	}
	if s.mode != "starttls" && s.mode != "implicit" && s.mode != "none" {
		return nil, fmt.Errorf("options.tls: %q must be starttls, implicit or none", s.mode)
	}
	if s.mode == "none" && s.user != "" {
		return nil, errors.New("options.tls: none would send the password in clear text")
	}
	if ca := cfg.Secret[SecretCACert]; len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("secret key %s: no PEM certificate", SecretCACert)
		}
		s.tls.RootCAs = pool
	}
	if key := cfg.Secret[SecretDKIMKey]; len(key) > 0 {
		signer, err := parseKey(key)
		if err != nil {
			return nil, fmt.Errorf("secret key %s: %w", SecretDKIMKey, err)
		}
		if o[OptionDKIMDomain] == "" || o[OptionSelector] == "" {
			return nil, fmt.Errorf("options.%s and options.%s: required with a DKIM key", OptionDKIMDomain, OptionSelector)
		}
		s.dkim = &dkim.SignOptions{Domain: o[OptionDKIMDomain], Selector: o[OptionSelector], Signer: signer,
			HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-Id", "Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post", "Mime-Version", "Content-Type"}}
	}
	size := 4
	if v := o[OptionPoolSize]; v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 256 {
			return nil, fmt.Errorf("options.%s: %q must be 1-256", OptionPoolSize, v)
		}
	}
	s.pool, s.slots = make(chan *smtp.Client, size), make(chan struct{}, size)
	return s, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("neither a PKCS#8 nor a PKCS#1 private key")
}

// Send writes the message, DKIM-signed when configured, over a pooled connection.
func (s *SMTP) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	var raw bytes.Buffer
	if err := Compose(&raw, m, time.Now()); err != nil {
		return channel.Receipt{}, err
	}
	if s.dkim != nil {
		var signed bytes.Buffer
		if err := dkim.Sign(&signed, bytes.NewReader(raw.Bytes()), s.dkim); err != nil {
			return channel.Receipt{}, channel.Errorf(channel.ProviderFailed, "DKIM signing: %v", err)
		}
		raw = signed
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return channel.Receipt{}, channel.AsError(ctx.Err())
	}
	// A pooled connection the relay has closed fails before the message is accepted:
	// one fresh connection is tried at once.
	for fresh := false; ; fresh = true {
		c, pooled, err := s.client(ctx, fresh)
		if err != nil {
			return channel.Receipt{}, classify(err)
		}
		if dl, ok := ctx.Deadline(); ok {
			c.CommandTimeout, c.SubmissionTimeout = time.Until(dl), time.Until(dl)
		}
		err = c.SendMail(m.Sender.From, []string{m.Job.To}, bytes.NewReader(raw.Bytes()))
		if err == nil {
			s.put(c)
			return channel.Receipt{ProviderID: MessageID(m)}, nil
		}
		// After a refusal (an SMTP reply) the session is still good; anything else closes it.
		var se *smtp.SMTPError
		if errors.As(err, &se) && c.Reset() == nil {
			s.put(c)
		} else {
			_ = c.Close()
		}
		if pooled && !errors.As(err, &se) {
			continue
		}
		return channel.Receipt{}, classify(err)
	}
}

// client takes a pooled connection, or dials a new one.
func (s *SMTP) client(ctx context.Context, fresh bool) (*smtp.Client, bool, error) {
	if !fresh {
		select {
		case c := <-s.pool:
			return c, true, nil
		default:
		}
	}
	d := net.Dialer{Timeout: s.timeout}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, false, err
	}
	var c *smtp.Client
	switch s.mode {
	case "implicit":
		c = smtp.NewClient(tls.Client(conn, s.tls))
	case "starttls":
		if c, err = smtp.NewClientStartTLS(conn, s.tls); err != nil {
			_ = conn.Close()
			return nil, false, err
		}
	default:
		c = smtp.NewClient(conn)
	}
	if s.helo != "" {
		if err := c.Hello(s.helo); err != nil {
			_ = c.Close()
			return nil, false, err
		}
	}
	if s.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.user, s.pass)); err != nil {
			_ = c.Close()
			return nil, false, err
		}
	}
	return c, false, nil
}

func (s *SMTP) put(c *smtp.Client) {
	select {
	case s.pool <- c:
	default:
		_ = c.Quit()
	}
}

// Close closes the pooled connections.
func (s *SMTP) Close() error {
	for {
		select {
		case c := <-s.pool:
			_ = c.Quit()
		default:
			return nil
		}
	}
}

// classify maps SMTP replies: 4xx transient; 530/534/535/538 (authentication) mean the
// relay refuses us; other 5xx refuse the message.
func classify(err error) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return channel.AsError(err)
	}
	reason := fmt.Sprintf("SMTP %d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	switch {
	case se.Code >= 400 && se.Code < 500:
		return &channel.Error{Kind: channel.Transient, Status: se.Code, Reason: reason}
	case se.Code == 530 || se.Code == 534 || se.Code == 535 || se.Code == 538:
		return &channel.Error{Kind: channel.ProviderFailed, Status: se.Code, Reason: reason}
	default:
		return &channel.Error{Kind: channel.Rejected, Status: se.Code, Reason: reason}
	}
}
