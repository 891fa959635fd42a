package api

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// Where the API server publishes the client CA for delegated authentication.
const (
	authConfigMapNamespace = "kube-system"
	authConfigMapName      = "extension-apiserver-authentication"
	clientCAKey            = "client-ca-file"
)

// retryBackoff is the webhook retry policy k8s.io/apiserver uses by default.
func retryBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// Delegated builds the delegating authenticator (TokenReview for bearer tokens, client
// certificates against the client CA the API server publishes in
// kube-system/extension-apiserver-authentication, reloaded as it changes) and the
// SubjectAccessReview authorizer. The CA controller runs until ctx ends.
func Delegated(ctx context.Context, kube kubernetes.Interface) (authenticator.Request, authorizer.Authorizer, error) {
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("client-ca", authConfigMapNamespace, authConfigMapName, clientCAKey, kube)
	if err != nil {
		return nil, nil, err
	}
	go ca.Run(ctx, 1)
	// The controller loads the CA from its informer; requests with client certificates
	// are refused until it has, so wait for it here.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return len(ca.CurrentCABundleContent()) > 0, nil
	}); err != nil {
		return nil, nil, fmt.Errorf("reading the cluster's client CA from %s/%s: %w", authConfigMapNamespace, authConfigMapName, err)
	}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:            kube.AuthenticationV1(),
		TokenAccessReviewTimeout:           10 * time.Second,
		CacheTTL:                           10 * time.Second,
		ClientCertificateCAContentProvider: ca,
		WebhookRetryBackoff:                retryBackoff(),
	}.New()
	if err != nil {
		return nil, nil, err
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: kube.AuthorizationV1(),
		AllowCacheTTL:             10 * time.Second,
		DenyCacheTTL:              5 * time.Second,
		WebhookRetryBackoff:       retryBackoff(),
	}.New()
	if err != nil {
		return nil, nil, err
	}
	return authn, authz, nil
}
