package push_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/hkdf"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/dispatcher/channel/channeltest"
	"github.com/croupier-crm/croupier/dispatcher/channel/push"
	"github.com/croupier-crm/croupier/dispatcher/ingest"
	"github.com/croupier-crm/croupier/internal/bus"
)

// decrypt opens an RFC 8291 (aes128gcm) Web Push body with the user agent's keys.
func decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short body")
	}
	salt, idlen := body[:16], int(body[20])
	if len(body) < 21+idlen {
		return nil, errors.New("short header")
	}
	asPub, ct := body[21:21+idlen], body[21+idlen:]
	pub, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, err
	}
	secret, err := ua.ECDH(pub)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), ua.PublicKey().Bytes()...), asPub...)
	ikm := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, auth, info), ikm); err != nil {
		return nil, err
	}
	cek, nonce := make([]byte, 16), make([]byte, 12)
	_, _ = io.ReadFull(hkdf.New(sha256.New, ikm, salt, []byte("Content-Encoding: aes128gcm\x00")), cek)
	_, _ = io.ReadFull(hkdf.New(sha256.New, ikm, salt, []byte("Content-Encoding: nonce\x00")), nonce)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, err
	}
	plain = []byte(strings.TrimRight(string(plain), "\x00"))
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

func TestWebPushVAPIDAndEncryptedPayload(t *testing.T) {
	vapidPriv, vapidPub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	var mu sync.Mutex
	var got []push.Notification
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			w.WriteHeader(410)
			return
		}
		// VAPID: "vapid t=<ES256 JWT>, k=<public key>", audience the push service's origin.
		var tok, k string
		for _, part := range strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "vapid "), ",") {
			part = strings.TrimSpace(part)
			if v, ok := strings.CutPrefix(part, "t="); ok {
				tok = v
			}
			if v, ok := strings.CutPrefix(part, "k="); ok {
				k = v
			}
		}
		kb, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(k, "="))
		x, y := elliptic.Unmarshal(elliptic.P256(), kb) //nolint:staticcheck // the VAPID key is an uncompressed point
		if x == nil {
			w.WriteHeader(401)
			return
		}
		pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Set(x), Y: y}
		claims := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"ES256"})); err != nil ||
			claims["aud"] != srv.URL || claims["sub"] != "mailto:crm@example-casino.az" || r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
			w.WriteHeader(403)
			return
		}
		body, _ := io.ReadAll(r.Body)
		plain, err := decrypt(body, ua, auth)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		var n push.Notification
		_ = json.Unmarshal(plain, &n)
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		w.Header().Set("Location", srv.URL+"/m/1")
		w.WriteHeader(201)
	}))
	defer srv.Close()
	subscription := func(path string) string {
		b, _ := json.Marshal(webpush.Subscription{Endpoint: srv.URL + path, Keys: webpush.Keys{
			P256dh: base64.RawURLEncoding.EncodeToString(ua.PublicKey().Bytes()), Auth: base64.RawURLEncoding.EncodeToString(auth)}})
		return string(b)
	}
	cfg := &bus.ChannelPolicyConfig{Spec: crmv1.ChannelPolicySpec{Channel: crmv1.ChannelWebPush, Providers: []crmv1.Provider{
		{Name: "vapid", Type: crmv1.ProviderWebPush, SecretRef: &crmv1.LocalObjectReference{Name: "vapid"},
			Options: map[string]string{push.OptionSubscriber: "crm@example-casino.az"}}}}}
	r := channeltest.Run(t, cfg, map[crmv1.ProviderType]channel.Factory{crmv1.ProviderWebPush: push.NewWebPush},
		channel.StaticSecrets{"baku/vapid": {push.SecretVAPIDPublic: []byte(vapidPub), push.SecretVAPIDPrivate: []byte(vapidPriv)}})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-1", Player: "p-1", Campaign: "weekly-cashback", To: subscription("/push/abc"), Subject: "Cashback",
		Text: "10% cashback hesabınızda", Data: map[string]string{"category": "marketing", "deepLink": "https://example-casino.az/cashback"}})
	r.Publish(t, bus.DeliveryJob{DecisionID: "d-2", Player: "p-2", Campaign: "weekly-cashback", To: subscription("/gone"), Text: "x",
		Data: map[string]string{"category": "marketing"}})
	r.Drained(t)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Title != "Cashback" || got[0].Body != "10% cashback hesabınızda" || got[0].DeepLink != "https://example-casino.az/cashback" || got[0].DecisionID != "d-1" {
		t.Fatalf("decrypted notifications %+v", got)
	}
	if oc := r.Attempts(t, "p-1"); channeltest.Results(oc) != "vapid:sent:1" || oc[0].ProviderID != srv.URL+"/m/1" {
		t.Fatalf("attempts %+v", oc)
	}
	if inv := r.Events(t, "p-2", ingest.TypeTokenInvalid); len(inv) != 1 || !strings.Contains(string(inv[0].Data), `"channel":"webPush"`) {
		t.Fatalf("a gone subscription: %+v", inv)
	}
}
