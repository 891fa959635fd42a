package money

import "testing"

func TestParseFormat(t *testing.T) {
	ok := []struct {
		amount, currency string
		minor            int64
		formatted        string
	}{
		{"50000.00", "AZN", 5000000, "50000.00"},
		{"5", "AZN", 500, "5.00"},
		{"0.5", "RUB", 50, "0.50"},
		{"1000", "JPY", 1000, "1000"},
		{"1.234", "KWD", 1234, "1.234"},
		{"0.01", "USD", 1, "0.01"},
	}
	for _, c := range ok {
		got, err := Parse(c.amount, c.currency)
		if err != nil || got != c.minor {
			t.Errorf("Parse(%q,%q) = %d, %v; want %d", c.amount, c.currency, got, err, c.minor)
		}
		if f := Format(got, c.currency); f != c.formatted {
			t.Errorf("Format(%d,%q) = %q; want %q", got, c.currency, f, c.formatted)
		}
	}
	for _, c := range []struct{ amount, currency string }{{"1.001", "AZN"}, {"-5", "AZN"}, {"1e3", "AZN"}, {"5", "azn"}, {"1.5", "JPY"}, {"", "AZN"}} {
		if _, err := Parse(c.amount, c.currency); err == nil {
			t.Errorf("Parse(%q,%q) accepted", c.amount, c.currency)
		}
	}
}

func TestMicros(t *testing.T) {
	for _, c := range []struct {
		amount string
		want   int64
	}{{"0.002", 2000}, {"0.035", 35000}, {"1", 1_000_000}, {"0.000001", 1}} {
		got, err := ParseMicros(c.amount, "AZN")
		if err != nil || got != c.want {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d", c.amount, got, err, c.want)
		}
	}
	if _, err := ParseMicros("0.0000001", "AZN"); err == nil {
		t.Error("7 fraction digits accepted")
	}
	if got := MinorToMicros(150, "AZN"); got != 1_500_000 {
		t.Errorf("MinorToMicros(150 AZN) = %d", got)
	}
	if got := MinorToMicros(7, "JPY"); got != 7_000_000 {
		t.Errorf("MinorToMicros(7 JPY) = %d", got)
	}
}

func TestFormatMicros(t *testing.T) {
	for micros, want := range map[int64]string{2000: "0.002", 1_500_000: "1.5", 0: "0", 3_000_000: "3", -250: "-0.00025"} {
		if got := FormatMicros(micros); got != want {
			t.Errorf("FormatMicros(%d) = %q, want %q", micros, got, want)
		}
		if micros >= 0 {
			if back, err := ParseMicros(want, "AZN"); err != nil || back != micros {
				t.Errorf("ParseMicros(%q) = %d, %v", want, back, err)
			}
		}
	}
}

func TestFormatMicrosIn(t *testing.T) {
	for _, c := range []struct {
		micros   int64
		currency string
		want     string
	}{{0, "AZN", "0.00"}, {120_500_000, "AZN", "120.50"}, {2000, "AZN", "0.002"}, {3_000_000, "AZN", "3.00"}, {12_535_000, "AZN", "12.535"},
		{1_000_000, "JPY", "1"}, {-250_000, "EUR", "-0.25"}, {1_000, "KWD", "0.001"}} {
		if got := FormatMicrosIn(c.micros, c.currency); got != c.want {
			t.Errorf("FormatMicrosIn(%d, %s) = %q, want %q", c.micros, c.currency, got, c.want)
		}
	}
}
