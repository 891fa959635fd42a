package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/manifests"
)

// The manager's generated ClusterRole and the dispatcher's grant exactly what the two
// use: no wildcard, nothing more. A new permission must be added here on purpose.
func TestControllerRBACIsLeastPrivilege(t *testing.T) {
	want := map[string][]string{
		"croupier-manager": {
			"/configmaps:get", "/configmaps:list", "/configmaps:watch", "/secrets:get",
			"/events:create", "/events:patch", "events.k8s.io/events:create", "events.k8s.io/events:patch",
			"coordination.k8s.io/leases:create", "coordination.k8s.io/leases:delete", "coordination.k8s.io/leases:get",
			"coordination.k8s.io/leases:list", "coordination.k8s.io/leases:patch", "coordination.k8s.io/leases:update", "coordination.k8s.io/leases:watch",
		},
		"croupier-dispatcher": {
			"/secrets:get", "authentication.k8s.io/tokenreviews:create", "authorization.k8s.io/subjectaccessreviews:create",
		},
	}
	for _, k := range []string{"campaigns", "channelpolicies", "preferencepolicies", "reports", "segments"} {
		for _, v := range []string{"get", "list", "patch", "update", "watch"} {
			want["croupier-manager"] = append(want["croupier-manager"], "crm.croupier.dev/"+k+":"+v)
		}
		want["croupier-manager"] = append(want["croupier-manager"], "crm.croupier.dev/"+k+"/finalizers:update")
		for _, v := range []string{"get", "patch", "update"} {
			want["croupier-manager"] = append(want["croupier-manager"], "crm.croupier.dev/"+k+"/status:"+v)
		}
	}
	roles := map[string]*rbacv1.ClusterRole{}
	for _, f := range []string{"role.yaml", "dispatcher_role.yaml"} {
		raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", f))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifests.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			var r rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
				t.Fatal(err)
			}
			roles[r.Name] = &r
		}
	}
	for name, grants := range want {
		r := roles[name]
		if r == nil {
			t.Fatalf("no ClusterRole %s in config/rbac", name)
		}
		var got []string
		for _, rule := range r.Rules {
			if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
				t.Errorf("%s: unexpected rule %+v", name, rule)
			}
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						if g == "*" || res == "*" || v == "*" {
							t.Errorf("%s grants a wildcard: %+v", name, rule)
						}
						got = append(got, g+"/"+res+":"+v)
					}
				}
			}
		}
		slices.Sort(got)
		slices.Sort(grants)
		if extra := minus(got, grants); len(extra) > 0 {
			t.Errorf("%s grants more than it uses: %v", name, extra)
		}
		if missing := minus(grants, got); len(missing) > 0 {
			t.Errorf("%s lacks %v", name, missing)
		}
	}

	// And the API server agrees: bound to their service accounts, neither may do what
	// the other or an attacker would want.
	ctx := context.Background()
	for name, r := range roles {
		cr := r.DeepCopy()
		cr.ResourceVersion = ""
		if err := k8s.Create(ctx, cr); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name + "-least"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "croupier-system", Name: name}}}
		if err := k8s.Create(ctx, crb); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	ask := func(sa, ns, group, resource, verb string) bool {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: "system:serviceaccount:croupier-system:" + sa,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:croupier-system"},
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: ns, Group: group, Resource: resource, Verb: verb}}}
		if err := k8s.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ask("croupier-dispatcher", "baku", "", "secrets", "get") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	reviews := 0
	for _, c := range []struct {
		sa, group, resource, verb string
		allowed                   bool
	}{
		{"croupier-manager", "crm.croupier.dev", "campaigns", "update", true},
		// The manager gets the Secrets policies name, uncached, to report a missing one:
		// get only, no list or watch (no Secret cache), no writes.
		{"croupier-manager", "", "secrets", "get", true},
		{"croupier-manager", "", "secrets", "list", false},
		{"croupier-manager", "", "secrets", "watch", false},
		{"croupier-manager", "", "secrets", "update", false},
		{"croupier-manager", "crm.croupier.dev", "campaigns", "delete", false},
		{"croupier-manager", "crm.croupier.dev", "campaigns", "create", false},
		{"croupier-manager", "", "configmaps", "update", false},
		{"croupier-manager", "", "pods", "create", false},
		{"croupier-manager", "rbac.authorization.k8s.io", "clusterroles", "escalate", false},
		{"croupier-dispatcher", "", "secrets", "get", true},
		{"croupier-dispatcher", "", "secrets", "list", false},
		{"croupier-dispatcher", "", "secrets", "watch", false},
		{"croupier-dispatcher", "", "secrets", "update", false},
		{"croupier-dispatcher", "crm.croupier.dev", "campaigns", "get", false},
		{"croupier-dispatcher", "", "serviceaccounts", "impersonate", false},
		{"croupier-dispatcher", "", "configmaps", "update", false},
	} {
		if got := ask(c.sa, "baku", c.group, c.resource, c.verb); got != c.allowed {
			t.Errorf("%s %s %s: allowed=%v, want %v", c.sa, c.verb, strings.TrimPrefix(c.group+"/"+c.resource, "/"), got, c.allowed)
		}
		reviews++
	}
	if !t.Failed() {
		bustest.Reliability(t, "RBAC least privilege", "the generated ClusterRoles of the manager and the dispatcher",
			fmt.Sprintf("%d grants compared with what the code uses; %d access reviews of what they must not do", len(want["croupier-manager"])+len(want["croupier-dispatcher"]), reviews),
			0, 0, "no wildcard, no grant beyond use; only get of Secrets for the manager (the policies' own, to report missing ones) and the dispatcher")
	}
}

// minus returns what a holds and b does not (both sorted).
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}
