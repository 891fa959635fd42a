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

func TestLocaleHelpers(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{must(Amount("az", "1234.50", "AZN")), "1.234,50\u00a0₼"},
		{must(Amount("ru", "1234.5", "RUB")), "1\u00a0234,50\u00a0₽"},
		{must(Amount("en", "5", "USD")), "$5.00"},
		{must(Amount("az", "10", "KWD")), "10,000\u00a0KWD"},
		{must(Number("ru", 1234567.891)), "1\u00a0234\u00a0567,89"},
		{must(Number("az", "20")), "20"},
	} {
		if strings.ReplaceAll(c.got, "\u202f", "\u00a0") != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	ru := []string{"one=фриспин", "few=фриспина", "many=фриспинов", "other=фриспина"}
	for n, want := range map[int]string{1: "фриспин", 2: "фриспина", 5: "фриспинов", 11: "фриспинов", 21: "фриспин", 22: "фриспина", 0: "фриспинов"} {
		if got := must(Plural("ru", n, ru...)); got != want {
			t.Errorf("ru %d: %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int]string{1: "spin", 2: "spins", 0: "spins"} {
		if got := must(Plural("en", n, "one=spin", "other=spins")); got != want {
			t.Errorf("en %d: %q, want %q", n, got, want)
		}
	}
	if _, err := Plural("ru", 1, "one=фриспин"); err == nil {
		t.Error("plural without other accepted")
	}
	if _, err := Amount("az", "1.005", "AZN"); err == nil {
		t.Error("an amount finer than the currency accepted")
	}
	if err := Check("body", `{{ .Event.count }} {{ plural "ru" .Event.count "one=фриспин" "other=фриспина" }} — {{ amount "ru" .Event.amount "RUB" }}`, "text"); err != nil {
		t.Error(err)
	}
}

func must(s string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}
