// Package rules holds the CEL environments of Croupier: `player` (Segment and audience
// rules, branch conditions) and `player` + `event` (trigger and waitFor conditions). The
// controllers compile with them to validate specs; the dispatcher compiles and runs them.
package rules

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/ext"
)

// Limits bound what a rule may cost.
const (
	// MaxSourceLength is the longest rule accepted (the CRDs allow 4096 characters).
	MaxSourceLength = 4096
	// MaxEstimatedCost is the largest static cost estimate accepted at compile time.
	MaxEstimatedCost = 100_000
	// RuntimeCostLimit stops one evaluation that runs past this cost.
	RuntimeCostLimit = 100_000
	// maxAttrSize is the size the cost estimator assumes for attrs and event data maps.
	maxAttrSize = 64
)

// Kind chooses the environment a rule is compiled in.
type Kind int

const (
	// PlayerRule sees `player` only: Segment rules, audience rules, branch conditions.
	PlayerRule Kind = iota
	// EventRule sees `player` and `event`: trigger and waitFor conditions.
	EventRule
)

func (k Kind) String() string {
	if k == EventRule {
		return "event rule"
	}
	return "player rule"
}

var (
	envOnce sync.Once
	envs    [2]*cel.Env
	envErr  error
)

func environments() ([2]*cel.Env, error) {
	envOnce.Do(func() {
		common := []cel.EnvOption{
			cel.OptionalTypes(),
			ext.Strings(),
			ext.Math(),
			ext.Lists(),
			ext.NativeTypes(ext.ParseStructTag("json"), reflect.TypeFor[Player](), reflect.TypeFor[RFM]()),
			cel.Variable("player", cel.ObjectType("rules.Player")),
		}
		envs[PlayerRule], envErr = cel.NewEnv(common...)
		if envErr != nil {
			return
		}
		envs[EventRule], envErr = envs[PlayerRule].Extend(cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)))
	})
	return envs, envErr
}

// Env returns the CEL environment of a kind of rule.
func Env(k Kind) (*cel.Env, error) {
	e, err := environments()
	if err != nil {
		return nil, fmt.Errorf("building CEL environment: %w", err)
	}
	return e[k], nil
}

// Program is a compiled rule ready to evaluate.
type Program struct {
	Source string
	Kind   Kind
	prg    cel.Program
	fast   pred
}

// CompileError is a rule that does not compile; Error names the position (line:column).
type CompileError struct {
	Kind    Kind
	Message string
}

func (e *CompileError) Error() string { return e.Message }

// Compile type-checks a rule, requires it to yield a bool, bounds its estimated cost and
// returns a program with a runtime cost limit.
func Compile(k Kind, source string) (*Program, error) {
	if strings.TrimSpace(source) == "" {
		return nil, &CompileError{Kind: k, Message: "the rule is empty"}
	}
	if len(source) > MaxSourceLength {
		return nil, &CompileError{Kind: k, Message: fmt.Sprintf("the rule is %d characters; at most %d", len(source), MaxSourceLength)}
	}
	env, err := Env(k)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(source)
	if iss.Err() != nil {
		return nil, &CompileError{Kind: k, Message: tidy(iss.Err().Error())}
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, &CompileError{Kind: k, Message: fmt.Sprintf("the rule yields %s; it must yield bool (true for a match)", ast.OutputType())}
	}
	est, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, &CompileError{Kind: k, Message: "estimating cost: " + err.Error()}
	}
	if est.Max > MaxEstimatedCost {
		return nil, &CompileError{Kind: k, Message: fmt.Sprintf("the rule may cost up to %d; at most %d (avoid nested loops over attrs or event data)", est.Max, MaxEstimatedCost)}
	}
	prg, err := env.Program(ast, cel.CostLimit(RuntimeCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &CompileError{Kind: k, Message: err.Error()}
	}
	out := &Program{Source: source, Kind: k, prg: prg}
	if k == PlayerRule {
		out.fast = compileFast(ast)
	}
	return out, nil
}

// tidy makes cel-go's multi-line error readable on one condition message line.
func tidy(msg string) string {
	msg = strings.ReplaceAll(msg, "<input>:", "")
	lines := strings.Split(msg, "\n")
	var out []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "|") {
			continue
		}
		out = append(out, strings.TrimPrefix(l, "ERROR: "))
	}
	return strings.Join(out, "; ")
}

// ErrNotBool is returned when a rule evaluates to something other than a bool.
var ErrNotBool = errors.New("rule did not yield a bool")

// Match evaluates a player rule.
func (p *Program) Match(player *Player) (bool, error) {
	return p.eval(map[string]any{"player": player})
}

// MatchEvent evaluates an event rule.
func (p *Program) MatchEvent(player *Player, event *Event) (bool, error) {
	return p.eval(map[string]any{"player": player, "event": event.Map()})
}

func (p *Program) eval(vars map[string]any) (bool, error) {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, ErrNotBool
	}
	return b, nil
}

// sizeEstimator tells the cost estimator how large the unbounded maps and strings are.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(element checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: maxAttrSize}
}

func (sizeEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}
