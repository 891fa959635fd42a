// Package money converts the decimal strings of manifests to int64 minor units and back.
// Amounts are never floats inside Croupier.
package money

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// exponents lists ISO 4217 currencies whose minor unit is not 2 digits.
var exponents = map[string]int{
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
var amountRE = regexp.MustCompile(`^([0-9]{1,15})(?:\.([0-9]{1,3}))?$`)

// Exponent is the number of minor digits of a currency (2 for AZN, RUB, USD, EUR).
func Exponent(currency string) int {
	if e, ok := exponents[currency]; ok {
		return e
	}
	return 2
}

// Parse converts a decimal amount in a currency to minor units. It refuses negative
// amounts, more fraction digits than the currency has, and malformed strings.
func Parse(amount, currency string) (int64, error) {
	if !currencyRE.MatchString(currency) {
		return 0, fmt.Errorf("currency %q must be a three-letter ISO 4217 code such as AZN", currency)
	}
	m := amountRE.FindStringSubmatch(amount)
	if m == nil {
		return 0, fmt.Errorf("amount %q must be a decimal string such as \"50000.00\"", amount)
	}
	exp := Exponent(currency)
	frac := m[2]
	if len(frac) > exp {
		return 0, fmt.Errorf("amount %q has %d digits after the point; %s has %d", amount, len(frac), currency, exp)
	}
	frac += strings.Repeat("0", exp-len(frac))
	whole, err := strconv.ParseInt(m[1]+frac, 10, 64)
	if err != nil || whole > math.MaxInt64/100 {
		return 0, fmt.Errorf("amount %q is too large", amount)
	}
	return whole, nil
}

// Format writes minor units as a decimal string with the currency's digits.
func Format(minor int64, currency string) string {
	exp := Exponent(currency)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	s := strconv.FormatInt(minor, 10)
	if exp == 0 {
		return sign + s
	}
	if len(s) <= exp {
		s = strings.Repeat("0", exp-len(s)+1) + s
	}
	return sign + s[:len(s)-exp] + "." + s[len(s)-exp:]
}

// MicrosPerUnit is the scale of per-message costs: millionths of the currency's unit.
const MicrosPerUnit = 1_000_000

var microRE = regexp.MustCompile(`^([0-9]{1,12})(?:\.([0-9]{1,6}))?$`)

// ParseMicros converts a per-message cost (e.g. "0.002" AZN for one email) to millionths of
// the currency's unit. Minor units cannot hold such prices; budgets settle costs by
// converting with MinorToMicros.
func ParseMicros(amount, currency string) (int64, error) {
	if !currencyRE.MatchString(currency) {
		return 0, fmt.Errorf("currency %q must be a three-letter ISO 4217 code such as AZN", currency)
	}
	m := microRE.FindStringSubmatch(amount)
	if m == nil {
		return 0, fmt.Errorf("amount %q must be a decimal string with at most 6 digits after the point", amount)
	}
	frac := m[2] + strings.Repeat("0", 6-len(m[2]))
	return strconv.ParseInt(m[1]+frac, 10, 64)
}

// MinorToMicros converts minor units of a currency to millionths of its unit.
func MinorToMicros(minor int64, currency string) int64 {
	scale := int64(1)
	for i := Exponent(currency); i < 6; i++ {
		scale *= 10
	}
	return minor * scale
}

// FormatMicros writes millionths of a unit as a decimal string without trailing zeros:
// 2000 -> "0.002".
func FormatMicros(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	s := fmt.Sprintf("%d.%06d", micros/MicrosPerUnit, micros%MicrosPerUnit)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return sign + s
}

// FormatMicrosIn writes millionths of a unit with at least the currency's digits and
// more only where the amount has them (a share of a minor unit, as email costs make):
// 0 -> "0.00", 12_500_000 -> "12.50", 2000 -> "0.002" for AZN. Every amount of money
// Croupier shows takes this one form.
func FormatMicrosIn(micros int64, currency string) string {
	s := FormatMicros(micros)
	exp := Exponent(currency)
	if exp == 0 {
		return s
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) < exp {
		frac += strings.Repeat("0", exp-len(frac))
	}
	return whole + "." + frac
}
