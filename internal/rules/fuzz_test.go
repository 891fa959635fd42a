package rules

import "testing"

// FuzzCompile: any rule text either compiles to a program that evaluates without panicking
// or is refused with an error; nothing panics.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`player.ltv > 500.0 && player.country == "AZ" && player.rfm.r <= 2`,
		`player.attrs["host"] == "x"`, `player.rfm.segment in ["atRisk", "lost"]`,
		`[1,2,3].all(x, x > 0)`, `player.ltv >`, `"a".matches("(")`, `player.attrs.map(k, k).size() > 0`,
	} {
		f.Add(s)
	}
	p := &Player{ID: "p-1", Country: "AZ", Attrs: map[string]string{"host": "x"}}
	f.Fuzz(func(t *testing.T, src string) {
		prg, err := Compile(PlayerRule, src)
		if err != nil {
			return
		}
		_, _ = prg.Match(p)
	})
}
