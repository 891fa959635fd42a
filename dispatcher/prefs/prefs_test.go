package prefs_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/dispatcher/prefs"
	"github.com/croupier-crm/croupier/internal/bus"
	"github.com/croupier-crm/croupier/internal/bustest"
	"github.com/croupier-crm/croupier/internal/clock"
)

func baku(t *testing.T) (*prefs.Policy, *bus.PreferencePolicyConfig) {
	t.Helper()
	rec, err := bus.Decode[bus.ConfigRecord](bustest.SamplePolicyRecord(t, "baku"))
	if err != nil {
		t.Fatal(err)
	}
	return bustest.SamplePolicy(t, "baku"), rec.PreferencePolicy
}

func TestCompileTheBakuPolicy(t *testing.T) {
	pol, _ := baku(t)
	mk, svc := pol.Rule(crmv1.CategoryMarketing), pol.Rule(crmv1.CategoryService)
	if mk == nil || svc == nil || pol.Rule(crmv1.CategoryResponsibleGaming) == nil {
		t.Fatalf("rules %+v", pol.Rules)
	}
	if mk.Mandatory || !svc.Mandatory || svc.SLA != 5*time.Minute || mk.SLA != 0 {
		t.Errorf("mandatory/SLA: marketing %v %v, service %v %v", mk.Mandatory, mk.SLA, svc.Mandatory, svc.SLA)
	}
	if got := mk.Channels; len(got) != 5 || got[0] != crmv1.ChannelPush || got[3] != crmv1.ChannelSMS {
		t.Errorf("marketing channel order %v", got)
	}
	if !mk.Defaults.Has(crmv1.ChannelPush) || mk.Defaults.Has(crmv1.ChannelSMS) {
		t.Errorf("marketing defaults %08b", mk.Defaults)
	}
	if len(mk.Caps) != 2 || mk.Caps[0].Max != 2 || mk.Caps[0].Window != 24*time.Hour || mk.Caps[1].Window != 168*time.Hour {
		t.Errorf("caps %+v", mk.Caps)
	}
	if mk.Quiet == nil || mk.Quiet.String() != "23:00-08:00" || mk.QuietAction != crmv1.QuietHoursDefer || svc.QuietAction != crmv1.QuietHoursBypass {
		t.Errorf("quiet hours %v %s / %s", mk.Quiet, mk.QuietAction, svc.QuietAction)
	}
	if pol.DefaultZone.String() != "Asia/Baku" || !pol.DoubleOptIn.Has(crmv1.ChannelEmail) || !pol.RequireKYC || !pol.RequireAge || !pol.ExcludeCooling {
		t.Errorf("policy %+v", pol)
	}
	if !pol.HasLanguage("ru") || pol.HasLanguage("fr") || pol.DedupWindow != 20*time.Hour {
		t.Errorf("languages %v, dedup %v", pol.Languages, pol.DedupWindow)
	}
}

func TestCompileRefusalsNameTheField(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(s *crmv1.PreferencePolicySpec)
		field string
	}{
		{"unknown zone", func(s *crmv1.PreferencePolicySpec) { s.DefaultTimeZone = "Asia/Atlantis" }, "spec.defaultTimeZone"},
		{"unknown category", func(s *crmv1.PreferencePolicySpec) { s.Categories[1].Category = "gossip" }, "spec.categories[1].category"},
		{"bad quiet hours", func(s *crmv1.PreferencePolicySpec) { s.Categories[0].QuietHours.End = "8:00" }, "spec.categories[0].quietHours.end"},
	} {
		_, cfg := baku(t)
		spec := cfg.Spec.DeepCopy()
		c.edit(spec)
		_, err := prefs.Compile("baku", &bus.PreferencePolicyConfig{Spec: *spec, Mandatory: cfg.Mandatory}, 2)
		if err == nil || !strings.HasPrefix(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.field)
		}
	}
	_, cfg := baku(t)
	spec := cfg.Spec.DeepCopy()
	spec.Categories[0].SLA = &metav1.Duration{Duration: time.Minute}
	spec.DedupWindow = &metav1.Duration{Duration: time.Hour}
	pol, err := prefs.Compile("baku", &bus.PreferencePolicyConfig{Spec: *spec}, 3)
	if err != nil || pol.Rule(crmv1.CategoryMarketing).SLA != time.Minute || pol.DedupWindow != time.Hour {
		t.Errorf("explicit SLA and dedup window: %v %+v", err, pol)
	}
	if pol.AttributionWindow != 7*24*time.Hour {
		t.Errorf("default attribution window %s, want 7 days", pol.AttributionWindow)
	}
	spec.Attribution = &crmv1.Attribution{Model: crmv1.AttributionLastTouch, WindowDays: 3}
	if pol, err = prefs.Compile("baku", &bus.PreferencePolicyConfig{Spec: *spec}, 4); err != nil || pol.AttributionWindow != 72*time.Hour {
		t.Errorf("attribution over 3 days: %v %v", err, pol.AttributionWindow)
	}
}

func TestQuietWindowAcrossMidnight(t *testing.T) {
	w, err := prefs.ParseWindow("23:00", "08:00")
	if err != nil {
		t.Fatal(err)
	}
	bakuZone, _ := clock.Location("Asia/Baku")
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, bakuZone) }
	for _, c := range []struct {
		t    time.Time
		in   bool
		ends time.Time
	}{
		{at(22, 22, 59), false, time.Time{}},
		{at(22, 23, 0), true, at(23, 8, 0)},
		{at(22, 23, 30), true, at(23, 8, 0)},
		{at(23, 2, 14), true, at(23, 8, 0)},
		{at(23, 7, 59), true, at(23, 8, 0)},
		{at(23, 8, 0), false, time.Time{}},
		{at(23, 12, 0), false, time.Time{}},
	} {
		if got := w.Contains(c.t); got != c.in {
			t.Errorf("%s in %s: %v", c.t.Format("15:04"), w, got)
		}
		if c.in && !w.EndAfter(c.t).Equal(c.ends) {
			t.Errorf("window from %s ends %s, want %s", c.t, w.EndAfter(c.t), c.ends)
		}
	}
	day, _ := prefs.ParseWindow("13:00", "15:00")
	if !day.Contains(at(22, 14, 0)) || day.Contains(at(22, 15, 0)) || day.Contains(at(22, 12, 59)) {
		t.Error("a daytime window")
	}
	// A window in a zone with a clock change ends at the wall-clock end that night.
	berlin, _ := clock.Location("Europe/Berlin")
	night := time.Date(2026, 3, 29, 1, 30, 0, 0, berlin)
	if end := w.EndAfter(night); end.Hour() != 8 || end.Day() != 29 || end.Sub(night) != 5*time.Hour+30*time.Minute {
		t.Errorf("end across the spring-forward night: %s (%s later)", end, end.Sub(night))
	}
	for _, bad := range [][2]string{{"24:00", "08:00"}, {"7:00", "08:00"}, {"23:00", "23:00"}, {"23:00", "08:60"}, {"", "08:00"}} {
		if _, err := prefs.ParseWindow(bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestPrepareRefusesWhatThePolicyForbids(t *testing.T) {
	pol, _ := baku(t)
	limit := func(cat crmv1.Category, max int, w time.Duration) prefs.PlayerCap {
		return prefs.PlayerCap{Category: cat, Max: max, Window: prefs.Duration{Duration: w}}
	}
	for _, c := range []struct {
		name     string
		p        prefs.Prefs
		field    string
		conflict bool
	}{
		{"service is mandatory", prefs.Prefs{Choices: []prefs.Choice{{Category: crmv1.CategoryService, Channel: crmv1.ChannelSMS, State: prefs.Withdrawn}}}, "choices[0].state", true},
		{"RG is mandatory", prefs.Prefs{Choices: []prefs.Choice{{Category: crmv1.CategoryResponsibleGaming, Channel: crmv1.ChannelEmail, State: prefs.Withdrawn}}}, "choices[0].state", true},
		{"unknown category", prefs.Prefs{Choices: []prefs.Choice{{Category: "gossip", Channel: crmv1.ChannelSMS, State: prefs.Granted}}}, "choices[0].category", false},
		{"a channel the brand does not use for it", prefs.Prefs{Choices: []prefs.Choice{{Category: crmv1.CategoryService, Channel: crmv1.ChannelViber, State: prefs.Granted}}}, "choices[0].channel", false},
		{"listed twice", prefs.Prefs{Choices: []prefs.Choice{
			{Category: crmv1.CategoryMarketing, Channel: crmv1.ChannelSMS, State: prefs.Granted},
			{Category: crmv1.CategoryMarketing, Channel: crmv1.ChannelSMS, State: prefs.Withdrawn}}}, "choices[1]", false},
		{"a language the brand does not write", prefs.Prefs{Languages: []prefs.ChannelLanguage{{Channel: crmv1.ChannelSMS, Language: "fr"}}}, "languages[0].language", false},
		{"quiet hours", prefs.Prefs{Quiet: &prefs.QuietHours{Start: "22:00", End: "22:00"}}, "quietHours", false},
		{"a cap of zero", prefs.Prefs{Caps: []prefs.PlayerCap{limit(crmv1.CategoryMarketing, 0, 24*time.Hour)}}, "caps[0].max", false},
		{"a cap window of a minute", prefs.Prefs{Caps: []prefs.PlayerCap{limit(crmv1.CategoryMarketing, 1, time.Minute)}}, "caps[0].window", false},
		{"capping a mandatory category", prefs.Prefs{Caps: []prefs.PlayerCap{limit(crmv1.CategoryService, 1, 24*time.Hour)}}, "caps[0].category", true},
	} {
		err := c.p.Prepare(pol)
		var fe *prefs.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Conflict != c.conflict {
			t.Errorf("%s: %v (%+v), want field %s conflict %v", c.name, err, fe, c.field, c.conflict)
		}
	}
	ok := prefs.Prefs{Choices: []prefs.Choice{{Category: crmv1.CategoryMarketing, Channel: crmv1.ChannelSMS, State: prefs.Granted}},
		Languages: []prefs.ChannelLanguage{{Channel: crmv1.ChannelSMS, Language: "ru"}},
		Quiet:     &prefs.QuietHours{Start: "21:00", End: "09:00"}, Caps: []prefs.PlayerCap{limit(crmv1.CategoryMarketing, 1, 24*time.Hour)}}
	if err := ok.Prepare(pol); err != nil {
		t.Fatal(err)
	}
	if w := ok.QuietWindow(); w == nil || w.String() != "21:00-09:00" || ok.Language(crmv1.ChannelSMS) != "ru" || ok.Language(crmv1.ChannelEmail) != "" {
		t.Errorf("prepared %v %q", w, ok.Language(crmv1.ChannelSMS))
	}
}

func TestConsentsFollowDefaultsChoicesAndDoubleOptIn(t *testing.T) {
	pol, _ := baku(t)
	mk, svc := pol.Rule(crmv1.CategoryMarketing), pol.Rule(crmv1.CategoryService)
	p := &prefs.Prefs{}
	if !prefs.Consents(pol, p, mk, crmv1.ChannelPush) || prefs.Consents(pol, p, mk, crmv1.ChannelSMS) {
		t.Error("defaults: push opted in, SMS opted out")
	}
	p.Set(crmv1.CategoryMarketing, crmv1.ChannelPush, prefs.Withdrawn)
	p.Set(crmv1.CategoryMarketing, crmv1.ChannelSMS, prefs.Granted)
	p.Set(crmv1.CategoryMarketing, crmv1.ChannelEmail, prefs.Pending)
	if prefs.Consents(pol, p, mk, crmv1.ChannelPush) || !prefs.Consents(pol, p, mk, crmv1.ChannelSMS) || prefs.Consents(pol, p, mk, crmv1.ChannelEmail) {
		t.Error("explicit choices: push withdrawn, SMS granted, email pending (not yet consent)")
	}
	if !prefs.Consents(pol, p, svc, crmv1.ChannelSMS) {
		t.Error("service SMS is opted in by default")
	}
	for _, e := range prefs.Matrix(pol, p) {
		if e.Category == crmv1.CategoryService && (!e.Mandatory || e.State != prefs.Granted) {
			t.Errorf("matrix row %+v", e)
		}
		if e.Category == crmv1.CategoryMarketing && e.Channel == crmv1.ChannelEmail && e.State != prefs.Pending {
			t.Errorf("matrix row %+v", e)
		}
	}
}

func TestAddressHash(t *testing.T) {
	sms := prefs.AddressHash(crmv1.ChannelSMS, "+994501234567")
	if prefs.AddressHash(crmv1.ChannelSMS, " +994 (50) 123-45-67 ") != sms {
		t.Error("a phone number written differently hashes differently")
	}
	if prefs.AddressHash(crmv1.ChannelViber, "+994501234567") == sms || prefs.AddressHash(crmv1.ChannelSMS, "+994501234568") == sms {
		t.Error("different channel or number, same hash")
	}
	if prefs.AddressHash(crmv1.ChannelEmail, "Leyla@Example.AZ ") != prefs.AddressHash(crmv1.ChannelEmail, "leyla@example.az") {
		t.Error("email case")
	}
	if !prefs.ValidHash(sms) || strings.Contains(sms, "994") {
		t.Errorf("hash %q", sms)
	}
	for _, bad := range []string{"", "xyz", strings.ToUpper(sms), sms[:31] + ".", sms + "0"} {
		if prefs.ValidHash(bad) {
			t.Errorf("%q accepted as a hash", bad)
		}
	}
}
