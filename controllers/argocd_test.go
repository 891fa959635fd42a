package controllers

import (
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"
	kjson "k8s.io/apimachinery/pkg/util/json"
)

// health runs config/argocd/health.lua as Argo CD does (gopher-lua, the object in obj).
func health(t *testing.T, object string) (status, message string) {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("..", "config", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := kjson.Unmarshal([]byte(object), &obj); err != nil {
		t.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(string(script)); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %v", L.Get(-1))
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(x)
	case bool:
		return lua.LBool(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	}
	return lua.LNil
}

func TestArgoCDHealthCheck(t *testing.T) {
	for _, c := range []struct{ name, obj, want string }{
		{"new", `{"metadata":{"generation":1}}`, "Progressing"},
		{"ready", `{"metadata":{"generation":2},"status":{"observedGeneration":2,"conditions":[{"type":"Ready","status":"True","reason":"Published","message":"published"}]}}`, "Healthy"},
		{"old generation", `{"metadata":{"generation":3},"status":{"observedGeneration":2,"conditions":[{"type":"Ready","status":"True","reason":"Published"}]}}`, "Progressing"},
		{"waiting for a Segment", `{"metadata":{"generation":1},"status":{"conditions":[{"type":"Ready","status":"False","reason":"DependencyNotFound","message":"Segment vips not found"},{"type":"Reconciling","status":"True","reason":"DependencyNotFound","message":"Segment vips not found"}]}}`, "Progressing"},
		{"invalid", `{"metadata":{"generation":1},"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"False","reason":"InvalidSpec","message":"spec.rule: 1:29"},{"type":"Stalled","status":"True","reason":"InvalidSpec","message":"spec.rule: 1:29"}]}}`, "Degraded"},
		{"budget exhausted", `{"metadata":{"generation":1},"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"Published"},{"type":"Paused","status":"True","reason":"BudgetExhausted","message":"the total budget of 1000 AZN is spent"}]}}`, "Suspended"},
		{"policy conflict", `{"metadata":{"generation":1},"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"False","reason":"PolicyConflict","message":"another PreferencePolicy is older"}]}}`, "Degraded"},
	} {
		if got, msg := health(t, c.obj); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, msg, c.want)
		}
	}
}
