// Package templates parses message bodies: Go templates over the player's fields, with the
// helpers every channel shares. The Campaign controller parses each body to reject a bad
// template at apply time; the dispatcher's renderer executes the same parse.
package templates

import (
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"github.com/croupier-crm/croupier/internal/money"
)

// Funcs are the helpers available in every template.
var Funcs = map[string]any{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": func(locale, s string) string { return cases.Title(language.Make(locale)).String(s) },
	"default": func(def string, v any) string {
		if s := fmt.Sprint(v); v != nil && s != "" {
			return s
		}
		return def
	},
	// money formats minor units in a currency: {{ money 5000 "AZN" }} -> 50.00 AZN.
	"money": func(minor int64, currency string) string { return money.Format(minor, currency) + " " + currency },
	// number, amount and plural follow the locale: {{ amount "az" .Event.amount .Event.currency }}.
	"number": Number,
	"amount": Amount,
	"plural": Plural,
	// date formats a time in a layout and an IANA zone.
	"date": func(t time.Time, layout, zone string) (string, error) {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return "", err
		}
		return t.In(loc).Format(layout), nil
	},
}

// Error is a template that does not parse; Error says where.
type Error struct {
	Field string
	Err   error
}

func (e *Error) Error() string { return e.Field + ": " + e.Err.Error() }

// Text parses a text-format body (SMS, push, Viber, plain email part).
func Text(name, body string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(name).Funcs(Funcs).Option("missingkey=zero").Parse(body)
	if err != nil {
		return nil, &Error{Field: name, Err: err}
	}
	return t, nil
}

// HTML parses an HTML body with contextual escaping.
func HTML(name, body string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Funcs(Funcs).Option("missingkey=zero").Parse(body)
	if err != nil {
		return nil, &Error{Field: name, Err: err}
	}
	return t, nil
}

// Check parses a body in its format and reports the first error.
func Check(name, body, format string) error {
	var err error
	if format == "html" {
		_, err = HTML(name, body)
	} else {
		_, err = Text(name, body)
	}
	return err
}
