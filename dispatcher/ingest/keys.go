package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/clock"
	"github.com/croupier-crm/croupier/internal/datakey"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// Secret keys of a brand's integration Secret.
const (
	SecretHMACKey         = secretkeys.HMACKey
	SecretHMACKeyPrevious = secretkeys.HMACKeyPrevious
	SecretBearerToken     = secretkeys.BearerToken
	SecretBearerPrevious  = secretkeys.BearerPrevious
	SecretJWTKey          = secretkeys.JWTKey
	SecretJWTKeyPrevious  = secretkeys.JWTKeyPrevious
	SecretLinkKey         = secretkeys.LinkKey
)

// SecretKeys reads a brand's keys from the Secret its PreferencePolicy names: the policy
// comes from croupier-config (the dispatcher never reads CRDs), the Secret from the
// Kubernetes API. Answers are cached for TTL so a rotated key is picked up within it.
type SecretKeys struct {
	Config  jetstream.KeyValue
	Secrets corev1client.SecretsGetter
	TTL     time.Duration
	Clock   clock.Func

	mu    sync.Mutex
	cache map[string]cachedKeys
}

type cachedKeys struct {
	keys    BrandKeys
	err     error
	expires time.Time
}

// Keys returns the brand's keys or ErrNoKeys.
func (s *SecretKeys) Keys(ctx context.Context, brand string) (BrandKeys, error) {
	now := s.Clock.Now()
	s.mu.Lock()
	c, ok := s.cache[brand]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.keys, c.err
	}
	keys, err := s.load(ctx, brand)
	if err != nil && !errors.Is(err, ErrNoKeys) {
		return BrandKeys{}, err // not cached: a transient failure is retried at once
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]cachedKeys{}
	}
	s.cache[brand] = cachedKeys{keys: keys, err: err, expires: now.Add(ttl)}
	s.mu.Unlock()
	return keys, err
}

// SecretName is the integration Secret of the brand's published PreferencePolicy.
func SecretName(ctx context.Context, config jetstream.KeyValue, brand string) (string, error) {
	lister, err := config.ListKeysFiltered(ctx, bus.ConfigKey(brand, bus.KindPreferencePolicy, "*"))
	if err != nil {
		return "", err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := config.Get(ctx, k)
		if err != nil {
			continue
		}
		rec, err := bus.Decode[bus.ConfigRecord](e.Value())
		if err != nil || rec.PreferencePolicy == nil {
			continue
		}
		if in := rec.PreferencePolicy.Spec.Integration; in != nil && in.SecretRef.Name != "" {
			return in.SecretRef.Name, nil
		}
	}
	return "", ErrNoKeys
}

func (s *SecretKeys) load(ctx context.Context, brand string) (BrandKeys, error) {
	name, err := SecretName(ctx, s.Config, brand)
	if err != nil {
		return BrandKeys{}, err
	}
	sec, err := s.Secrets.Secrets(brand).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return BrandKeys{}, fmt.Errorf("%w (Secret %s/%s does not exist)", ErrNoKeys, brand, name)
	}
	if err != nil {
		return BrandKeys{}, fmt.Errorf("reading Secret %s/%s: %w", brand, name, err)
	}
	var k BrandKeys
	for _, n := range []string{SecretHMACKey, SecretHMACKeyPrevious} {
		if v := sec.Data[n]; len(v) > 0 {
			k.HMAC = append(k.HMAC, v)
		}
	}
	for _, n := range []string{SecretBearerToken, SecretBearerPrevious} {
		if v := strings.TrimSpace(string(sec.Data[n])); v != "" {
			k.Bearer = append(k.Bearer, v)
		}
	}
	for _, n := range []string{SecretJWTKey, SecretJWTKeyPrevious} {
		if v := sec.Data[n]; len(v) > 0 {
			k.JWT = append(k.JWT, v)
		}
	}
	for _, n := range []string{secretkeys.DataKeyWrap, secretkeys.DataKeyWrapPrevious} {
		if v := sec.Data[n]; len(v) > 0 {
			kek, err := datakey.ParseKEK(v)
			if err != nil {
				return BrandKeys{}, fmt.Errorf("Secret %s/%s key %s: %w", brand, name, n, err)
			}
			k.DataKeyWrap = append(k.DataKeyWrap, kek)
		}
	}
	k.Link = sec.Data[SecretLinkKey]
	if len(k.Link) == 0 && len(k.HMAC) > 0 {
		k.Link = k.HMAC[0]
	}
	if len(k.HMAC)+len(k.Bearer) == 0 {
		return BrandKeys{}, fmt.Errorf("%w (Secret %s/%s has neither %s nor %s)", ErrNoKeys, brand, name, SecretHMACKey, SecretBearerToken)
	}
	return k, nil
}

// StaticKeys is a fixed key set per brand (tests and benchmarks of the intake path).
type StaticKeys map[string]BrandKeys

// Keys returns the brand's keys or ErrNoKeys.
func (s StaticKeys) Keys(_ context.Context, brand string) (BrandKeys, error) {
	k, ok := s[brand]
	if !ok {
		return BrandKeys{}, ErrNoKeys
	}
	return k, nil
}
