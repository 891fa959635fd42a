// Package campaigncheck holds the checks of a Campaign's spec that the API server's
// schema and CEL rules cannot make and that need nothing but the spec: cron expressions
// and time zones, the CEL conditions (compiled with the dispatcher's own environment),
// self-references, experiment overrides. The manager's controller refuses a Campaign with
// them (condition InvalidSpec); the console runs the same code while a person edits, so
// the builder shows the controller's verdict on the step it is about before saving.
package campaigncheck

import (
	"fmt"
	"time"
	_ "time/tzdata" // IANA zones on images without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"

	crmv1 "github.com/croupier-crm/croupier/api/v1alpha1"
	"github.com/croupier-crm/croupier/internal/rules"
)

// Cron reads five-field cron expressions and descriptors such as @daily.
var Cron = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// DefaultZone is a schedule's zone when it names none.
const DefaultZone = "Asia/Baku"

// Problem is one thing wrong with a spec, at a field (steps named by name:
// spec.steps[welcome].branch.cases[0].when).
type Problem struct {
	Field   string
	Message string
}

func (p *Problem) Error() string { return p.Field + ": " + p.Message }

func problem(field, format string, args ...any) *Problem {
	return &Problem{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Zone is a schedule's time zone name.
func Zone(s *crmv1.ScheduleTrigger) string {
	if s.TimeZone == "" {
		return DefaultZone
	}
	return s.TimeZone
}

// Spec is the first problem of spec, or nil.
func Spec(spec *crmv1.CampaignSpec) *Problem {
	for _, check := range []func(*crmv1.CampaignSpec) *Problem{trigger, audience, steps, experiment} {
		if p := check(spec); p != nil {
			return p
		}
	}
	return nil
}

func trigger(spec *crmv1.CampaignSpec) *Problem {
	t := &spec.Trigger
	if s := t.Schedule; s != nil {
		if _, err := Cron.Parse(s.Cron); err != nil {
			return problem("spec.trigger.schedule.cron", "%q is not a valid cron expression: %v", s.Cron, err)
		}
		if _, err := time.LoadLocation(Zone(s)); err != nil {
			return problem("spec.trigger.schedule.timeZone", "unknown IANA time zone %q", s.TimeZone)
		}
	}
	if e := t.Event; e != nil && e.Condition != "" {
		if _, err := rules.Compile(rules.EventRule, e.Condition); err != nil {
			return problem("spec.trigger.event.condition", "%v", err)
		}
	}
	return nil
}

func audience(spec *crmv1.CampaignSpec) *Problem {
	if a := spec.Audience; a != nil && a.Rule != "" {
		if _, err := rules.Compile(rules.PlayerRule, a.Rule); err != nil {
			return problem("spec.audience.rule", "%v", err)
		}
	}
	return nil
}

func steps(spec *crmv1.CampaignSpec) *Problem {
	for i := range spec.Steps {
		s := &spec.Steps[i]
		field := fmt.Sprintf("spec.steps[%s]", s.Name)
		if w := s.WaitFor; w != nil && w.Condition != "" {
			if _, err := rules.Compile(rules.EventRule, w.Condition); err != nil {
				return problem(field+".waitFor.condition", "%v", err)
			}
		}
		if b := s.Branch; b != nil {
			for j, c := range b.Cases {
				if _, err := rules.Compile(rules.PlayerRule, c.When); err != nil {
					return problem(fmt.Sprintf("%s.branch.cases[%d].when", field, j), "%v", err)
				}
			}
		}
		if n := s.Next; n == s.Name {
			return problem(field+".next", "a step cannot be its own next step")
		}
		if g := s.Grant; g != nil && g.OnRefused == s.Name {
			return problem(field+".grant.onRefused", "a grant step cannot be its own onRefused step")
		}
	}
	return nil
}

// experiment refuses variant content overrides that name no content of the campaign.
func experiment(spec *crmv1.CampaignSpec) *Problem {
	if spec.Experiment == nil {
		return nil
	}
	names := map[string]bool{}
	for _, c := range spec.Contents {
		names[c.Name] = true
	}
	for _, v := range spec.Experiment.Variants {
		for _, o := range v.Contents {
			for _, n := range []struct{ field, name string }{{"content", o.Content}, {"use", o.Use}} {
				if !names[n.name] {
					return problem(fmt.Sprintf("spec.experiment.variants[%s].contents[%s].%s", v.Name, o.Content, n.field), "%q is not a content of this campaign", n.name)
				}
			}
		}
	}
	return nil
}
