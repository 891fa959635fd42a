// Package people gives a brand's namespace the sample people of the console and kubectl
// croupier: a ServiceAccount per role (marketer, analyst, ops manager, support agent)
// bound to the role's ClusterRole from config/rbac/people, and a token for each from the
// TokenRequest API. make dev prints the tokens; the console's tests sign in with them.
package people

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Roles are the sample people, in the order make dev prints them, with their ClusterRole.
var Roles = []struct{ Person, ClusterRole string }{
	{"marketer", "croupier-marketer"},
	{"analyst", "croupier-analyst"},
	{"ops-manager", "croupier-ops-manager"},
	{"support-agent", "croupier-support-agent"},
}

// Account is the ServiceAccount name of a sample person.
func Account(person string) string { return "console-" + person }

// Ensure creates the ServiceAccounts and RoleBindings in namespace (existing ones are
// kept) and returns a token per person, valid for ttl.
func Ensure(ctx context.Context, cs kubernetes.Interface, namespace string, ttlSeconds int64) (map[string]string, error) {
	tokens := map[string]string{}
	for _, r := range Roles {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: Account(r.Person), Namespace: namespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": "croupier", "croupier.dev/sample-person": r.Person}}}
		if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("ServiceAccount %s: %w", sa.Name, err)
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: Account(r.Person), Namespace: namespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": "croupier"}},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: r.ClusterRole},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: namespace}}}
		if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("RoleBinding %s: %w", rb.Name, err)
		}
		tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(ttlSeconds)}}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("token for %s: %w", sa.Name, err)
		}
		tokens[r.Person] = tr.Status.Token
	}
	return tokens, nil
}
