package controllers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/croupier-crm/croupier/internal/bus"
)

// specDiff lists the paths that differ between two JSON documents. Lists of objects with a
// "name" (steps, contents, providers) or "category"/"channel" key are matched by that key,
// so reordering or inserting one step reads as one change, not many.
func specDiff(before, after json.RawMessage) ([]bus.FieldChange, error) {
	var a, b any
	if len(before) > 0 {
		if err := json.Unmarshal(before, &a); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(after, &b); err != nil {
		return nil, err
	}
	var out []bus.FieldChange
	walkDiff("spec", a, b, &out)
	return out, nil
}

func walkDiff(path string, a, b any, out *[]bus.FieldChange) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range av {
				keys[k] = true
			}
			for k := range bv {
				keys[k] = true
			}
			for _, k := range sortedKeys(keys) {
				walkDiff(path+"."+k, av[k], bv[k], out)
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			if key := listKey(av, bv); key != "" {
				am, bm := byKey(av, key), byKey(bv, key)
				keys := map[string]bool{}
				for k := range am {
					keys[k] = true
				}
				for k := range bm {
					keys[k] = true
				}
				for _, k := range sortedKeys(keys) {
					walkDiff(fmt.Sprintf("%s[%s=%s]", path, key, k), am[k], bm[k], out)
				}
				return
			}
		}
	}
	ja, jb := marshal(a), marshal(b)
	if !bytes.Equal(ja, jb) {
		*out = append(*out, bus.FieldChange{Path: path, Before: ja, After: jb})
	}
}

func marshal(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

func listKey(lists ...[]any) string {
	for _, key := range []string{"name", "category", "channel"} {
		ok, n := true, 0
		for _, l := range lists {
			for _, e := range l {
				m, isMap := e.(map[string]any)
				if !isMap {
					return ""
				}
				if _, has := m[key].(string); !has {
					ok = false
				}
				n++
			}
		}
		if ok && n > 0 {
			return key
		}
	}
	return ""
}

func byKey(l []any, key string) map[string]any {
	m := make(map[string]any, len(l))
	for _, e := range l {
		m[e.(map[string]any)[key].(string)] = e
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
