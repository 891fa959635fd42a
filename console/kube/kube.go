// Package kube makes the console's calls to the Kubernetes API server as the signed-in
// person: a client per request built from the API server's address and CA and the
// person's bearer token, never from credentials of the console's own.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/console/session"
)

// Scheme knows the built-in kinds and Croupier's.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(crmv1.AddToScheme(Scheme))
}

// Cluster is where the API server is: its address and the CA that signs its certificate.
// It holds no credentials.
type Cluster struct {
	Host string
	CA   []byte
	// Insecure skips the server certificate check (tests against a server without a CA
	// only; never in make dev or a cluster).
	Insecure bool
}

// FromKubeconfig reads the current context's server and CA from a kubeconfig and drops
// its user: the console acts with the signed-in person's token only.
func FromKubeconfig(path string) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return fromRest(cfg)
}

// InCluster is the API server of the cluster the console runs in (its CA; the pod's own
// ServiceAccount token is not used).
func InCluster() (*Cluster, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, err
	}
	return fromRest(cfg)
}

func fromRest(cfg *rest.Config) (*Cluster, error) {
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		ca = b
	}
	return &Cluster{Host: cfg.Host, CA: ca, Insecure: cfg.Insecure}, nil
}

// Config is a client configuration acting as the holder of token.
func (c *Cluster) Config(token string) *rest.Config {
	return &rest.Config{Host: c.Host, BearerToken: token, UserAgent: "croupier-console",
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CA, Insecure: c.Insecure}, QPS: 50, Burst: 100}
}

// Client is a controller-runtime client acting as the session's person.
func (c *Cluster) Client(s *session.Session) (client.Client, error) {
	return client.New(c.Config(s.Token), client.Options{Scheme: Scheme})
}

// Verify asks the API server, with the token, whose it is (SelfSubjectReview).
func (c *Cluster) Verify(ctx context.Context, token string) (session.Identity, error) {
	cs, err := kubernetes.NewForConfig(c.Config(token))
	if err != nil {
		return session.Identity{}, err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if apierrors.IsUnauthorized(err) {
		return session.Identity{}, session.ErrRefused
	}
	if err != nil {
		return session.Identity{}, err
	}
	return session.Identity{User: r.Status.UserInfo.Username, Groups: r.Status.UserInfo.Groups}, nil
}

// Access is what the person may do in a namespace: verbs by "group/resource" (the
// resource may carry a subresource, "campaigns/status"). The front end hides what is
// absent; the API server still decides every call.
type Access map[string][]string

// Can says whether verb on resource of group is allowed.
func (a Access) Can(group, resource, verb string) bool {
	for _, k := range []string{group + "/" + resource, group + "/*", "*/" + resource, "*/*"} {
		if v := a[k]; slices.Contains(v, verb) || slices.Contains(v, "*") {
			return true
		}
	}
	return false
}

// Rules asks the API server what the session's person may do in namespace
// (SelfSubjectRulesReview).
func (c *Cluster) Rules(ctx context.Context, s *session.Session, namespace string) (Access, error) {
	cs, err := kubernetes.NewForConfig(c.Config(s.Token))
	if err != nil {
		return nil, err
	}
	r, err := cs.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: namespace}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	a := Access{}
	for _, rule := range r.Status.ResourceRules {
		if len(rule.ResourceNames) > 0 {
			continue // rights on named objects only: not a right over the kind
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				k := g + "/" + res
				for _, v := range rule.Verbs {
					if !slices.Contains(a[k], v) {
						a[k] = append(a[k], v)
					}
				}
				sort.Strings(a[k])
			}
		}
	}
	return a, nil
}

// Status is an API server error's HTTP status (500 for errors that are not the API
// server's answers).
func Status(err error) int {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Code != 0 {
		return int(se.Status().Code)
	}
	return 500
}
