package secretkeys_test

import (
	"testing"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

func TestMissingNamesTheKeysOfTheClosestSet(t *testing.T) {
	for _, c := range []struct {
		need secretkeys.Need
		data map[string][]byte
		want string
	}{
		{secretkeys.ForProvider(crmv1.ProviderTwilio, nil), map[string][]byte{"accountSid": []byte("AC1")}, "authToken"},
		{secretkeys.ForProvider(crmv1.ProviderTwilio, nil), nil, "accountSid and authToken"},
		{secretkeys.ForProvider(crmv1.ProviderSMSRest, map[string]string{"auth": "basic"}), map[string][]byte{"token": []byte("t")}, "username and password"},
		{secretkeys.ForProvider(crmv1.ProviderSMSRest, nil), map[string][]byte{"token": []byte("t")}, ""},
		{secretkeys.Integration, map[string][]byte{"jwtKey": []byte("j")}, "hmacKey or bearerToken"},
		{secretkeys.Integration, map[string][]byte{"bearerToken": []byte("b")}, ""},
		{secretkeys.ForProvider(crmv1.ProviderWebhook, nil), map[string][]byte{"hmacKey": {}}, "hmacKey"}, // empty counts as missing
		{secretkeys.ForProvider(crmv1.ProviderSMTP, nil), nil, ""},
	} {
		if got := c.need.Missing(c.data); got != c.want {
			t.Errorf("%v over %v: missing %q, want %q", c.need, c.data, got, c.want)
		}
		if got := c.need.Missing(c.need.Sample()); got != "" {
			t.Errorf("%v: its sample lacks %q", c.need, got)
		}
	}
}

func TestRefsNameTheFields(t *testing.T) {
	spec := &crmv1.ChannelPolicySpec{Channel: crmv1.ChannelWebhook,
		Providers: []crmv1.Provider{{Name: "backend", Type: crmv1.ProviderWebhook, SecretRef: &crmv1.LocalObjectReference{Name: "signing"}}, {Name: "plain", Type: crmv1.ProviderWebhook}},
		Callbacks: &crmv1.Callbacks{SecretRef: &crmv1.LocalObjectReference{Name: "cb"}}}
	refs := secretkeys.OfChannelPolicy(spec)
	if len(refs) != 2 || refs[0].Field != "spec.providers[backend].secretRef" || refs[0].Name != "signing" || refs[1].Field != "spec.callbacks.secretRef" || refs[1].Name != "cb" {
		t.Fatalf("refs %+v", refs)
	}
	if refs := secretkeys.OfPreferencePolicy(&crmv1.PreferencePolicySpec{}); refs != nil {
		t.Fatalf("a policy without an integration names %+v", refs)
	}
}
