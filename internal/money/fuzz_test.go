package money

import "testing"

// FuzzParse: whatever Parse accepts, Format writes back to an amount Parse reads as the
// same value; ParseMicros agrees with Parse through MinorToMicros.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "50000.00", "0.10", "1.5", "-1", "1e3", "00012.30", "999999999999999.99", " 1", "1.234"} {
		f.Add(s, "AZN")
	}
	f.Add("100", "JPY")
	f.Fuzz(func(t *testing.T, amount, currency string) {
		v, err := Parse(amount, currency)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("%q parsed negative %d", amount, v)
		}
		back, err := Parse(Format(v, currency), currency)
		if err != nil || back != v {
			t.Fatalf("%q -> %d -> %q -> %d (%v)", amount, v, Format(v, currency), back, err)
		}
		if m, err := ParseMicros(amount, currency); err == nil && m != MinorToMicros(v, currency) {
			t.Fatalf("%q: micros %d, minor %d", amount, m, v)
		}
	})
}
