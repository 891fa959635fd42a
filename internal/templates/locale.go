package templates

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"

	"github.com/croupier-crm/croupier/internal/money"
)

// symbols are the signs players read; other currencies show their ISO code.
var symbols = map[string]string{"AZN": "₼", "RUB": "₽", "USD": "$", "EUR": "€", "TRY": "₺", "KZT": "₸", "GEL": "₾", "UAH": "₴", "GBP": "£"}

// symbolFirst lists the languages that write the sign before the amount ($5.00); the
// others write it after (5,00 ₼).
var symbolFirst = map[string]bool{"en": true}

// Number formats a number in the locale's digits grouping and decimal sign, at most two
// decimals: number "ru" 1234567.5 -> 1 234 567,5.
func Number(locale string, v any) (string, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(fmt.Sprint(v)), 64)
	if err != nil {
		return "", fmt.Errorf("number: %q is not a number", fmt.Sprint(v))
	}
	return message.NewPrinter(language.Make(locale)).Sprint(number.Decimal(f, number.MaxFractionDigits(2))), nil
}

// Amount formats a decimal amount (as events carry it, "1234.50") of a currency for the
// locale: amount "az" "1234.50" "AZN" -> 1.234,50 ₼; amount "en" "5" "USD" -> $5.00.
func Amount(locale string, v any, currency string) (string, error) {
	minor, err := money.Parse(strings.TrimSpace(fmt.Sprint(v)), currency)
	if err != nil {
		return "", fmt.Errorf("amount: %w", err)
	}
	exp := money.Exponent(currency)
	f := float64(minor)
	for range exp {
		f /= 10
	}
	s := message.NewPrinter(language.Make(locale)).Sprint(number.Decimal(f, number.MinFractionDigits(exp), number.MaxFractionDigits(exp)))
	sym, ok := symbols[currency]
	if !ok {
		sym = currency
	}
	base, _ := language.Make(locale).Base()
	if symbolFirst[base.String()] {
		return sym + s, nil
	}
	return s + "\u00a0" + sym, nil
}

// Plural picks the word for n by the locale's CLDR plural rules from forms given as
// "one=…", "few=…", "many=…", "other=…" ("other" is required):
// plural "ru" 5 "one=фриспин" "few=фриспина" "many=фриспинов" "other=фриспина" -> фриспинов.
func Plural(locale string, n any, forms ...string) (string, error) {
	byForm := map[string]string{}
	for _, f := range forms {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", fmt.Errorf("plural: %q is not form=word", f)
		}
		byForm[k] = v
	}
	other, ok := byForm["other"]
	if !ok {
		return "", fmt.Errorf("plural: the other= form is required")
	}
	i, err := strconv.Atoi(strings.TrimSpace(fmt.Sprint(n)))
	if err != nil {
		return other, nil // fractions and non-numbers read as "other"
	}
	if i < 0 {
		i = -i
	}
	name := [...]string{plural.Other: "other", plural.Zero: "zero", plural.One: "one", plural.Two: "two", plural.Few: "few", plural.Many: "many"}
	if w, ok := byForm[name[plural.Cardinal.MatchPlural(language.Make(locale), i, 0, 0, 0, 0)]]; ok {
		return w, nil
	}
	return other, nil
}
