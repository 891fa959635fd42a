package controllers

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
)

// TestPeopleRoles binds each role to a user in one brand's namespace and asks the real API
// server (SubjectAccessReview) what the user may do there and in another brand.
func TestPeopleRoles(t *testing.T) {
	ctx := context.Background()
	for _, u := range readManifests(t, filepath.Join("..", "config", "rbac", "people")) {
		if err := k8s.Create(ctx, u); err != nil {
			t.Fatalf("applying %s: %v", u.GetName(), err)
		}
		labels := u.GetLabels()
		if !strings.Contains(fmt.Sprint(labels), "aggregate-to-") && u.GetName() != "croupier-privacy-officer" && u.GetName() != "croupier-support-agent" {
			t.Errorf("%s has no aggregate-to-* label", u.GetName())
		}
	}
	brand, other := newNamespace(t), newNamespace(t)
	users := map[string]string{
		"croupier-marketer":        "leyla",
		"croupier-ops-manager":     "rashad",
		"croupier-analyst":         "nigar",
		"croupier-privacy-officer": "dpo",
		"croupier-support-agent":   "aysel",
	}
	for role, user := range users {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: brand, Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
		}
		if err := k8s.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
	const crm, adm = "crm.croupier.dev", crmv1.AdminGroup
	type check struct {
		group, resource, sub, verb string
	}
	res := func(r string) (string, string) {
		name, sub, _ := strings.Cut(r, "/")
		return name, sub
	}
	edit := func(group, resource string) []check {
		r, s := res(resource)
		return []check{{group, r, s, "create"}, {group, r, s, "update"}, {group, r, s, "delete"}}
	}
	read := func(group, resource string) []check {
		r, s := res(resource)
		return []check{{group, r, s, "get"}, {group, r, s, "list"}, {group, r, s, "watch"}}
	}
	// admin is the verbs the dispatcher's routes check on an admin resource.
	admin := func(r string, verbs ...string) []check {
		name, sub := res(r)
		out := make([]check, len(verbs))
		for i, v := range verbs {
			out[i] = check{adm, name, sub, v}
		}
		return out
	}
	var all []check
	for _, k := range []string{"campaigns", "segments", "channelpolicies", "preferencepolicies"} {
		all = append(all, read(crm, k)...)
		all = append(all, read(crm, k+"/status")...)
		all = append(all, edit(crm, k)...)
	}
	all = append(all, edit(crm, "campaigns/status")...)
	adminResources := []string{crmv1.AdminPlayersImport, crmv1.AdminPlayersErase, crmv1.AdminPlayersExport, crmv1.AdminPlayersExplain,
		crmv1.AdminPlayersHistory, crmv1.AdminCampaignsPreview, crmv1.AdminCampaignsTestSend, crmv1.AdminPlayersPreferences,
		crmv1.AdminSuppressions, crmv1.AdminConsentReport, crmv1.AdminCampaignsReport, crmv1.AdminCouponsImport}
	for _, r := range adminResources {
		all = append(all, admin(r, "get", "create", "update", "delete")...)
	}
	all = append(all, check{"", "secrets", "", "get"})

	allowed := map[string]map[check]bool{}
	grant := func(role string, cs ...check) {
		if allowed[role] == nil {
			allowed[role] = map[check]bool{}
		}
		for _, c := range cs {
			allowed[role][c] = true
		}
	}
	for _, k := range []string{"campaigns", "segments", "channelpolicies", "preferencepolicies"} {
		grant("croupier-marketer", read(crm, k)...)
		grant("croupier-marketer", read(crm, k+"/status")...)
		grant("croupier-ops-manager", read(crm, k)...)
		grant("croupier-ops-manager", read(crm, k+"/status")...)
		grant("croupier-ops-manager", edit(crm, k)...)
		grant("croupier-analyst", read(crm, k)...)
		grant("croupier-analyst", read(crm, k+"/status")...)
	}
	grant("croupier-marketer", edit(crm, "campaigns")...)
	grant("croupier-marketer", edit(crm, "segments")...)
	readInsight := append(admin(crmv1.AdminPlayersExplain, "get"), admin(crmv1.AdminPlayersHistory, "get")...)
	changePrefs := admin(crmv1.AdminPlayersPreferences, "get", "update")
	suppressions := admin(crmv1.AdminSuppressions, "get", "create", "delete")
	grant("croupier-marketer", admin(crmv1.AdminCampaignsPreview, "get")...)
	grant("croupier-marketer", admin(crmv1.AdminCampaignsReport, "get")...)
	grant("croupier-marketer", admin(crmv1.AdminCampaignsTestSend, "create")...)
	grant("croupier-marketer", readInsight...)
	grant("croupier-ops-manager", admin(crmv1.AdminCampaignsPreview, "get")...)
	grant("croupier-ops-manager", admin(crmv1.AdminCampaignsReport, "get")...)
	grant("croupier-ops-manager", admin(crmv1.AdminCouponsImport, "create")...)
	grant("croupier-ops-manager", admin(crmv1.AdminCampaignsTestSend, "create")...)
	grant("croupier-ops-manager", admin(crmv1.AdminPlayersImport, "create")...)
	grant("croupier-ops-manager", admin(crmv1.AdminConsentReport, "get")...)
	grant("croupier-ops-manager", readInsight...)
	grant("croupier-ops-manager", changePrefs...)
	grant("croupier-ops-manager", suppressions...)
	grant("croupier-analyst", readInsight...)
	grant("croupier-analyst", admin(crmv1.AdminCampaignsReport, "get")...)
	grant("croupier-privacy-officer", admin(crmv1.AdminPlayersErase, "create")...)
	grant("croupier-privacy-officer", admin(crmv1.AdminPlayersExport, "get")...)
	grant("croupier-privacy-officer", admin(crmv1.AdminConsentReport, "get")...)
	grant("croupier-privacy-officer", readInsight...)
	grant("croupier-privacy-officer", changePrefs...)
	grant("croupier-privacy-officer", suppressions...)
	grant("croupier-support-agent", readInsight...)
	grant("croupier-support-agent", changePrefs...)

	ask := func(user, ns string, c check) bool {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user,
			ResourceAttributes: &authzv1.ResourceAttributes{
				Namespace: ns, Group: c.group, Resource: c.resource, Subresource: c.sub, Verb: c.verb,
			},
		}}
		if err := k8s.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	// The authorizer sees new bindings through its informers: wait until each user is
	// allowed one thing its role grants before asking everything.
	for role, user := range users {
		for _, c := range all {
			if allowed[role][c] {
				deadline := time.Now().Add(10 * time.Second)
				for !ask(user, brand, c) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				break
			}
		}
	}
	for role, user := range users {
		t.Run(role, func(t *testing.T) {
			for _, c := range all {
				want := allowed[role][c]
				if got := ask(user, brand, c); got != want {
					t.Errorf("%s %s %s/%s in the brand's namespace: allowed=%v, want %v", user, c.verb, c.resource, c.sub, got, want)
				}
				if ask(user, other, c) {
					t.Errorf("%s may %s %s/%s in another brand's namespace", user, c.verb, c.resource, c.sub)
				}
			}
		})
	}
}
