// Package push is the push channels' providers: FCM HTTP v1 (OAuth2 service-account JWT,
// cached access token), APNs over HTTP/2 with token (ES256 JWT) authentication. An
// invalid device token is reported so the partition owner removes it.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/croupier-crm/croupier/dispatcher/channel"
	"github.com/croupier-crm/croupier/internal/secretkeys"
)

// SecretServiceAccount is the FCM provider's Secret key holding the service-account JSON.
const SecretServiceAccount = secretkeys.ServiceAccount

// FCMScope is the OAuth2 scope of the FCM HTTP v1 API.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMURL is the FCM API base (the provider's endpoint overrides it).
const FCMURL = "https://fcm.googleapis.com"

// FCM sends through the HTTP v1 API.
type FCM struct {
	url    string
	tokens oauth2.TokenSource
	http   *http.Client
}

type serviceAccount struct {
	ProjectID    string `json:"project_id"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// NewFCM is the channel.Factory of type fcm: the Secret's serviceAccount is the JSON key
// file Google issues; access tokens are fetched with its JWT and reused until they expire.
func NewFCM(cfg channel.Config) (channel.Provider, error) {
	var sa serviceAccount
	if err := json.Unmarshal(cfg.Secret[SecretServiceAccount], &sa); err != nil {
		return nil, fmt.Errorf("secret key %s: not a service-account JSON key: %v", SecretServiceAccount, err)
	}
	if sa.ProjectID == "" || sa.ClientEmail == "" || sa.PrivateKey == "" || sa.TokenURI == "" {
		return nil, fmt.Errorf("secret key %s: project_id, client_email, private_key and token_uri are required", SecretServiceAccount)
	}
	jc := &jwt.Config{Email: sa.ClientEmail, PrivateKey: []byte(sa.PrivateKey), PrivateKeyID: sa.PrivateKeyID, Scopes: []string{FCMScope}, TokenURL: sa.TokenURI}
	base := strings.TrimSuffix(cfg.Provider.Endpoint, "/")
	if base == "" {
		base = FCMURL
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, cfg.HTTP)
	return &FCM{url: base + "/v1/projects/" + sa.ProjectID + "/messages:send", tokens: oauth2.ReuseTokenSource(nil, jc.TokenSource(ctx)), http: cfg.HTTP}, nil
}

// FCMMessage is the body of messages:send.
type FCMMessage struct {
	Message struct {
		Token        string            `json:"token"`
		Notification *FCMNotification  `json:"notification,omitempty"`
		Data         map[string]string `json:"data,omitempty"`
		Android      *struct {
			CollapseKey string `json:"collapse_key,omitempty"`
			Priority    string `json:"priority,omitempty"`
		} `json:"android,omitempty"`
	} `json:"message"`
}

// FCMNotification is the visible part.
type FCMNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

// Send posts one message. 404 (UNREGISTERED) and an INVALID_ARGUMENT naming the token
// mean the token is gone.
func (f *FCM) Send(ctx context.Context, m *channel.Message) (channel.Receipt, error) {
	j := m.Job
	if j.To == "" {
		return channel.Receipt{}, &channel.Error{Kind: channel.Rejected, Reason: "no device token"}
	}
	tok, err := f.tokens.Token()
	if err != nil {
		return channel.Receipt{}, &channel.Error{Kind: channel.ProviderFailed, Reason: "FCM access token: " + oauthReason(err)}
	}
	var body FCMMessage
	body.Message.Token = j.To
	body.Message.Notification = &FCMNotification{Title: j.Subject, Body: j.Text, Image: j.Data["imageURL"]}
	body.Message.Data = map[string]string{"decisionId": j.DecisionID, "campaign": j.Campaign}
	if v := j.Data["deepLink"]; v != "" {
		body.Message.Data["deepLink"] = v
	}
	body.Message.Android = &struct {
		CollapseKey string `json:"collapse_key,omitempty"`
		Priority    string `json:"priority,omitempty"`
	}{CollapseKey: j.Campaign, Priority: "high"}
	raw, _ := json.Marshal(body)
	resp, ans, err := channel.Post(ctx, f.http, f.url, "application/json", raw, tok.SetAuthHeader)
	if e := (*channel.Error)(nil); errors.As(err, &e) {
		var fe struct {
			Error struct {
				Status  string `json:"status"`
				Details []struct {
					ErrorCode string `json:"errorCode"`
				} `json:"details"`
			} `json:"error"`
		}
		_ = json.Unmarshal(ans, &fe)
		code := fe.Error.Status
		for _, d := range fe.Error.Details {
			if d.ErrorCode != "" {
				code = d.ErrorCode
			}
		}
		if code != "" {
			e.Reason += " (" + code + ")"
		}
		if code == "UNREGISTERED" || (resp != nil && resp.StatusCode == http.StatusBadRequest && code == "INVALID_ARGUMENT") {
			e.Kind, e.TokenInvalid = channel.Rejected, true
		}
		return channel.Receipt{}, e
	}
	if err != nil {
		return channel.Receipt{}, err
	}
	var ok struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(ans, &ok)
	return channel.Receipt{ProviderID: ok.Name}, nil
}

// oauthReason is a token error without the token endpoint's answer body.
func oauthReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return fmt.Sprintf("token endpoint answered %d", re.Response.StatusCode)
	}
	return "token endpoint unreachable"
}
