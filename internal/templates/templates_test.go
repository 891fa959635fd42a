package templates

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	if err := Check("ok", `Salam {{ .Player.FirstName | default "dost" }}, {{ money 5000 "AZN" }}`, "text"); err != nil {
		t.Fatal(err)
	}
	if err := Check("html", `<p>{{ .Player.FirstName }}</p>`, "html"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{{ .Player.Name `, `{{ nosuchfunc }}`, `{{ end }}`} {
		err := Check("body", bad, "text")
		if err == nil || !strings.HasPrefix(err.Error(), "body: ") {
			t.Errorf("%q: error %v does not name the field", bad, err)
		}
	}
}

// FuzzCheck: any body parses or is refused; nothing panics.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`Salam {{ .Player.FirstName }}`, `{{ if .X }}a{{ else }}b{{ end }}`, `<a href="{{ .Link }}">x</a>`, `{{`, `{{ range . }}`} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, body string, html bool) {
		format := "text"
		if html {
			format = "html"
		}
		_ = Check("body", body, format)
	})
}
