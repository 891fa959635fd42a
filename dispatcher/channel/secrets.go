package channel

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// KubeSecrets reads providers' Secrets from the brand's namespace, keeping each for TTL
// (default one minute) so a rotated credential is picked up without a restart.
type KubeSecrets struct {
	Client corev1client.SecretsGetter
	TTL    time.Duration

	mu    sync.Mutex
	cache map[string]cachedSecret
}

type cachedSecret struct {
	data map[string][]byte
	at   time.Time
}

// Secret returns the data of Secret name in namespace brand.
func (k *KubeSecrets) Secret(ctx context.Context, brand, name string) (map[string][]byte, error) {
	ttl := k.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	key := brand + "/" + name
	k.mu.Lock()
	c, ok := k.cache[key]
	k.mu.Unlock()
	if ok && time.Since(c.at) < ttl {
		return c.data, nil
	}
	s, err := k.Client.Secrets(brand).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.cache == nil {
		k.cache = map[string]cachedSecret{}
	}
	k.cache[key] = cachedSecret{data: s.Data, at: time.Now()}
	k.mu.Unlock()
	return s.Data, nil
}

// StaticSecrets are Secrets held in memory by brand and name (make dev, tests).
type StaticSecrets map[string]map[string][]byte

// Secret returns StaticSecrets[brand+"/"+name].
func (s StaticSecrets) Secret(_ context.Context, brand, name string) (map[string][]byte, error) {
	d, ok := s[brand+"/"+name]
	if !ok {
		return nil, errNoSecret
	}
	return d, nil
}

var errNoSecret = Errorf(ProviderFailed, "not found")
