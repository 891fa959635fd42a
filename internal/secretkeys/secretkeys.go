// Package secretkeys names the keys of the Secrets that Croupier's policies reference, and
// says which of them each provider and the brand's integration need, so the manager can
// report a missing Secret or key on the policy (Ready=False) before the first send or
// request fails, and the dispatcher reads the same names.
package secretkeys

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

// Keys of a brand's integration Secret (PreferencePolicy spec.integration.secretRef) and of
// a webhook's or callback's signing Secret.
const (
	HMACKey         = "hmacKey"
	HMACKeyPrevious = "hmacKeyPrevious"
	BearerToken     = "bearerToken"
	BearerPrevious  = "bearerTokenPrevious"
	JWTKey          = "jwtKey"
	JWTKeyPrevious  = "jwtKeyPrevious"
	LinkKey         = "linkKey"
	// DataKeyWrap is the brand's key-encryption key (32 bytes, raw or base64): the
	// players' data keys in croupier-keys are stored wrapped with it;
	// DataKeyWrapPrevious the one before, still opened while the owners re-wrap.
	DataKeyWrap         = "dataKeyWrap"
	DataKeyWrapPrevious = "dataKeyWrapPrevious"
)

// Keys of provider Secrets (ChannelPolicy spec.providers[].secretRef).
const (
	Username         = "username"
	Password         = "password"
	Token            = "token"
	DLRToken         = "dlrToken"
	APIKey           = "apiKey"
	AccountSID       = "accountSid"
	AuthToken        = "authToken"
	ServiceAccount   = "serviceAccount"
	AuthKey          = "authKey"
	CACert           = "caCert"
	DKIMKey          = "dkimPrivateKey"
	VAPIDPublicKey   = "vapidPublicKey"
	VAPIDPrivateKey  = "vapidPrivateKey"
	optionAuth       = "auth"
	optionAuthBasic  = "basic"
	optionAuthHeader = "header"
)

// Need is what a Secret must hold: every key of at least one of the sets (none: the
// Secret must only exist).
type Need [][]string

// Missing returns the keys of the closest set the data lacks ("" joined with " and " per
// set, alternatives with " or "), or "" when one set is complete.
func (n Need) Missing(data map[string][]byte) string {
	if len(n) == 0 {
		return ""
	}
	var alts []string
	for _, set := range n {
		var lack []string
		for _, k := range set {
			if len(data[k]) == 0 {
				lack = append(lack, k)
			}
		}
		if len(lack) == 0 {
			return ""
		}
		alts = append(alts, strings.Join(lack, " and "))
	}
	return strings.Join(alts, " or ")
}

// ForProvider is what the Secret of a provider of type t (with its options) must hold.
func ForProvider(t crmv1.ProviderType, options map[string]string) Need {
	switch t {
	case crmv1.ProviderWebhook:
		return Need{{HMACKey}}
	case crmv1.ProviderSendGrid, crmv1.ProviderMailgun:
		return Need{{APIKey}}
	case crmv1.ProviderSMSRest:
		switch options[optionAuth] {
		case optionAuthBasic:
			return Need{{Username, Password}}
		default: // bearer or header
			return Need{{Token}}
		}
	case crmv1.ProviderTwilio:
		return Need{{AccountSID, AuthToken}}
	case crmv1.ProviderViber:
		return Need{{AuthToken}}
	case crmv1.ProviderFCM:
		return Need{{ServiceAccount}}
	case crmv1.ProviderAPNs:
		return Need{{AuthKey}}
	case crmv1.ProviderWebPush:
		return Need{{VAPIDPublicKey, VAPIDPrivateKey}}
	}
	return nil // smtp (credentials optional), inApp
}

// Integration is what a brand's integration Secret must hold: an HMAC key or a bearer
// token for intake.
var Integration = Need{{HMACKey}, {BearerToken}}

// Callbacks is what a ChannelPolicy's callbacks Secret must hold.
var Callbacks = Need{{HMACKey}}

// Ref is one Secret a policy names: the field that names it, its name and what it must
// hold.
type Ref struct {
	Field, Name string
	Need        Need
}

// OfChannelPolicy lists the Secrets a ChannelPolicy names: its providers' and its
// callbacks'.
func OfChannelPolicy(s *crmv1.ChannelPolicySpec) []Ref {
	var refs []Ref
	for _, pr := range s.Providers {
		if pr.SecretRef != nil {
			refs = append(refs, Ref{"spec.providers[" + pr.Name + "].secretRef", pr.SecretRef.Name, ForProvider(pr.Type, pr.Options)})
		}
	}
	if cb := s.Callbacks; cb != nil && cb.SecretRef != nil {
		refs = append(refs, Ref{"spec.callbacks.secretRef", cb.SecretRef.Name, Callbacks})
	}
	return refs
}

// OfPreferencePolicy lists the Secret a PreferencePolicy names: the brand's integration.
func OfPreferencePolicy(s *crmv1.PreferencePolicySpec) []Ref {
	if s.Integration == nil {
		return nil
	}
	return []Ref{{"spec.integration.secretRef", s.Integration.SecretRef.Name, Integration}}
}

// Sample returns data that satisfies need with placeholder values, for tests and local
// stacks.
func (n Need) Sample() map[string][]byte {
	data := map[string][]byte{}
	if len(n) > 0 {
		for _, k := range n[0] {
			data[k] = []byte("sample-" + k + "-value")
		}
	}
	return data
}

// OfManifest lists the Secrets a decoded manifest names: a ChannelPolicy's or a
// PreferencePolicy's, none for any other kind.
func OfManifest(u *unstructured.Unstructured) ([]Ref, error) {
	switch u.GetKind() {
	case "ChannelPolicy":
		var p crmv1.ChannelPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			return nil, err
		}
		return OfChannelPolicy(&p.Spec), nil
	case "PreferencePolicy":
		var p crmv1.PreferencePolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			return nil, err
		}
		return OfPreferencePolicy(&p.Spec), nil
	}
	return nil, nil
}
