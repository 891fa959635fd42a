package cli_test

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func envtestUser(name string) envtest.User {
	groups := []string{}
	if name == "admin" {
		groups = []string{"system:masters"}
	}
	return envtest.User{Name: name, Groups: groups}
}

// rbacBinding makes leyla the brand's marketer (config/rbac/people).
var rbacBinding = rbacv1.RoleBinding{
	ObjectMeta: metav1.ObjectMeta{Namespace: "baku", Name: "leyla-marketer"},
	RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "croupier-marketer"},
	Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "leyla"}},
}
