package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// APNs Secret keys and options.
const (
	SecretAuthKey = secretkeys.AuthKey // the .p8 token-signing key (PEM, PKCS#8, P-256)
	SecretCACert  = secretkeys.CACert  // PEM: a CA to trust instead of the system's (tests, proxies)
	OptionKeyID   = "keyID"
	OptionTeamID  = "teamID"
	OptionTopic   = "topic" // the app's bundle id
	// OptionConnections is how many HTTP/2 connections to open (default 4).
	OptionConnections = "connections"
)

// APNsURL is Apple's production endpoint (api.sandbox.push.apple.com for development).
const APNsURL = "https://api.push.apple.com"

// tokenLifetime is how long a provider token is reused: Apple refuses tokens older than an
// hour and asks that they be refreshed at most every 20 minutes.
const tokenLifetime = 40 * time.Minute

// APNs sends over HTTP/2 with token authentication; one connection carries many
// requests at once.
type APNs struct {
	url, keyID, teamID, topic string
	key                       *ecdsa.PrivateKey
	http                      *http.Client

	mu    sync.Mutex
	token string
	made  time.Time
}

// NewAPNs is the channel.Factory of type apns.
func NewAPNs(cfg channel.Config) (channel.Provider, error) {
	o := cfg.Provider.Options
	a := &APNs{url: strings.TrimSuffix(cfg.Provider.Endpoint, "/"), keyID: o[OptionKeyID], teamID: o[OptionTeamID], topic: o[OptionTopic]}
	if a.url == "" {
		a.url = APNsURL
	}
	if a.keyID == "" || a.teamID == "" || a.topic == "" {
		return nil, fmt.Errorf("options.%s, options.%s and options.%s: required for apns", OptionKeyID, OptionTeamID, OptionTopic)
	}
	block, _ := pem.Decode(cfg.Secret[SecretAuthKey])
	if block == nil {
		return nil, fmt.Errorf("secret key %s: not PEM", SecretAuthKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %v", SecretAuthKey, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("secret key %s: not an EC key", SecretAuthKey)
	}
	a.key = ec
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := cfg.Secret[SecretCACert]; len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("secret key %s: no PEM certificate", SecretCACert)
		}
		tc.RootCAs = pool
	}
	// HTTP/2 multiplexes: a few connections carry every request in flight (a server
	// allows a few hundred streams on each; Apple's allow 1,000).
	conns := 4
	if v := o[OptionConnections]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("options.%s: %q must be 1-64", OptionConnections, v)
		}
		conns = n
	}
	a.http = &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxConnsPerHost: conns,
		IdleConnTimeout: 5 * time.Minute, TLSHandshakeTimeout: 10 * time.Second}}
	return a, nil
}

// providerToken is the cached ES256 JWT, made again after tokenLifetime or on demand.
func (a *APNs) providerToken(renew bool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && !renew && time.Since(a.made) < tokenLifetime {
		return a.token, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.teamID, "iat": time.Now().Unix()})
	t.Header["kid"] = a.keyID
	s, err := t.SignedString(a.key)
	if err != nil {
		return "", err
	}
	a.token, a.made = s, time.Now()
	return s, nil
}

// apnsID turns the idempotency key into the UUID APNs takes as apns-id.
func apnsID(key string) string {
	h := sha256.Sum256([]byte(key))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// Send posts one notification to /3/device/<token>.
func (a *APNs) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	j := m.Job
	if j.To == "" {
		return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, Reason: "no device token"}
	}
	alert := map[string]any{"title": j.Subject, "body": j.Text}
	aps := map[string]any{"alert": alert, "sound": "default"}
	if j.Data["imageURL"] != "" {
		aps["mutable-content"] = 1
	}
	payload := map[string]any{"aps": aps, "decisionId": j.DecisionID}
	for _, k := range []string{"deepLink", "imageURL"} {
		if v := j.Data[k]; v != "" {
			payload[k] = v
		}
	}
	body, _ := json.Marshal(payload)
	for renewed := false; ; renewed = true {
		tok, err := a.providerToken(renewed)
		if err != nil {
			return channel.Receipt{}, channel.Errorf(channel.ProviderFailed, "signing the provider token: %v", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+"/3/device/"+j.To, bytes.NewReader(body))
		if err != nil {
			return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, TokenInvalid: true, Reason: "malformed device token"}
		}
		req.Header.Set("authorization", "bearer "+tok)
		req.Header.Set("apns-topic", a.topic)
		req.Header.Set("apns-push-type", "alert")
		req.Header.Set("apns-priority", "10")
		req.Header.Set("apns-id", apnsID(m.IdempotencyKey))
		if len(j.Campaign) <= 64 && j.Campaign != "" {
			req.Header.Set("apns-collapse-id", j.Campaign)
		}
		resp, err := a.http.Do(req)
		if err != nil {
			return channel.Receipt{}, err
		}
		ans, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		resp.Body.Close()
		e := channel.HTTPStatus(resp, time.Now())
		if e == nil {
			return channel.Receipt{ProviderID: resp.Header.Get("apns-id")}, nil
		}
		var reason struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(ans, &reason)
		if reason.Reason != "" {
			e.Reason += " (" + reason.Reason + ")"
		}
		switch reason.Reason {
		case "ExpiredProviderToken", "InvalidProviderToken":
			if !renewed {
				continue // made again once at once
			}
		case "BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic":
			e.Kind, e.TokenInvalid = channel.Rejected, true
		}
		return channel.Receipt{}, e
	}
}

// Close drops the connections.
func (a *APNs) Close() error {
	a.http.CloseIdleConnections()
	return nil
}
