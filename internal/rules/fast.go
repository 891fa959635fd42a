package rules

import (
	"errors"
	"reflect"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// Segment rules are evaluated against every player of a partition, so the common shape
// (comparisons of player fields with constants, joined by &&, || and !) is also compiled
// to Go closures over Fields, which compute only the fields a rule reads. Anything else
// (attrs, timestamps, macros, functions) is left to CEL. The two agree on every rule the
// closures accept (rules_test and the players package test it differentially).

// Field names a scalar field of `player` the closures can read.
type Field uint8

// Fields of `player` the fast path reads; FieldNone is none.
const (
	FieldNone Field = iota
	FieldID
	FieldCountry
	FieldLanguage
	FieldTimeZone
	FieldCurrency
	FieldVIPLevel
	FieldKYCStatus
	FieldAgeVerified
	FieldSelfExcluded
	FieldCoolingOff
	FieldAtRisk
	FieldAcquisitionChannel
	FieldDepositCount
	FieldDepositSum
	FieldWithdrawalSum
	FieldLTV
	FieldARPU
	FieldBetCount
	FieldAvgBet
	FieldWagered
	FieldNetLoss
	FieldFavoriteGame
	FieldFavoriteGameCategory
	FieldSessionsPerWeek
	FieldDaysInactive
	FieldChurnRisk
	FieldRFMR
	FieldRFMF
	FieldRFMM
	FieldRFMSegment
	FieldHasEmail
	FieldHasPhone
	FieldHasPush
	fieldCount
)

// Fields is a player as the fast path reads it: each method returns one field of the
// given kind (the same value `player` has in CEL).
type Fields interface {
	Int(Field) int64
	Float(Field) float64
	String(Field) string
	Bool(Field) bool
}

type fieldInfo struct {
	id   Field
	kind reflect.Kind
}

// fieldsByPath maps "ltv" and "rfm.r" to their field, built from Player's JSON names.
var fieldsByPath = func() map[string]fieldInfo {
	ids := map[string]Field{
		"id": FieldID, "country": FieldCountry, "language": FieldLanguage, "timeZone": FieldTimeZone, "currency": FieldCurrency,
		"vipLevel": FieldVIPLevel, "kycStatus": FieldKYCStatus, "ageVerified": FieldAgeVerified, "selfExcluded": FieldSelfExcluded,
		"coolingOff": FieldCoolingOff, "atRisk": FieldAtRisk, "acquisitionChannel": FieldAcquisitionChannel,
		"depositCount": FieldDepositCount, "depositSum": FieldDepositSum, "withdrawalSum": FieldWithdrawalSum, "ltv": FieldLTV,
		"arpu": FieldARPU, "betCount": FieldBetCount, "avgBet": FieldAvgBet, "wagered": FieldWagered, "netLoss": FieldNetLoss, "favoriteGame": FieldFavoriteGame,
		"favoriteGameCategory": FieldFavoriteGameCategory, "sessionsPerWeek": FieldSessionsPerWeek, "daysInactive": FieldDaysInactive,
		"churnRisk": FieldChurnRisk, "rfm.r": FieldRFMR, "rfm.f": FieldRFMF, "rfm.m": FieldRFMM, "rfm.segment": FieldRFMSegment,
		"hasEmail": FieldHasEmail, "hasPhone": FieldHasPhone, "hasPush": FieldHasPush,
	}
	out := map[string]fieldInfo{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch f.Type.Kind() {
			case reflect.Struct:
				if f.Type == reflect.TypeFor[RFM]() {
					walk(f.Type, prefix+name+".")
				}
			case reflect.Int64, reflect.Float64, reflect.String, reflect.Bool:
				if id, ok := ids[prefix+name]; ok {
					out[prefix+name] = fieldInfo{id, f.Type.Kind()}
				}
			}
		}
	}
	walk(reflect.TypeFor[Player](), "")
	if len(out) != int(fieldCount)-1 {
		panic("rules: the fast path's field table does not match Player")
	}
	return out
}()

// ErrNoFastPath is returned by MatchFields for a rule the closures do not cover.
var ErrNoFastPath = errors.New("the rule has no fast path; evaluate it with CEL")

type pred func(Fields) bool

// compileFast returns the closure of a checked player rule, or nil.
func compileFast(a *cel.Ast) pred {
	p, _ := fastExpr(a.NativeRep().Expr())
	return p
}

func fastExpr(e celast.Expr) (pred, bool) {
	if e.Kind() == celast.LiteralKind {
		if b, ok := e.AsLiteral().(types.Bool); ok {
			v := bool(b)
			return func(Fields) bool { return v }, true
		}
		return nil, false
	}
	if e.Kind() == celast.SelectKind {
		// A bool field on its own: player.ageVerified.
		if f, ok := field(e); ok && f.kind == reflect.Bool {
			id := f.id
			return func(x Fields) bool { return x.Bool(id) }, true
		}
		return nil, false
	}
	if e.Kind() != celast.CallKind {
		return nil, false
	}
	c := e.AsCall()
	if c.IsMemberFunction() {
		return nil, false
	}
	args := c.Args()
	switch c.FunctionName() {
	case operators.LogicalAnd, operators.LogicalOr:
		l, ok1 := fastExpr(args[0])
		r, ok2 := fastExpr(args[1])
		if !ok1 || !ok2 {
			return nil, false
		}
		if c.FunctionName() == operators.LogicalAnd {
			return func(x Fields) bool { return l(x) && r(x) }, true
		}
		return func(x Fields) bool { return l(x) || r(x) }, true
	case operators.LogicalNot:
		p, ok := fastExpr(args[0])
		if !ok {
			return nil, false
		}
		return func(x Fields) bool { return !p(x) }, true
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		return comparison(c.FunctionName(), args[0], args[1])
	case operators.In:
		return membership(args[0], args[1])
	}
	return nil, false
}

// field resolves player.<name> or player.rfm.<name>.
func field(e celast.Expr) (fieldInfo, bool) {
	var path []string
	for e.Kind() == celast.SelectKind {
		s := e.AsSelect()
		if s.IsTestOnly() {
			return fieldInfo{}, false
		}
		path = append([]string{s.FieldName()}, path...)
		e = s.Operand()
	}
	if e.Kind() != celast.IdentKind || e.AsIdent() != "player" {
		return fieldInfo{}, false
	}
	f, ok := fieldsByPath[strings.Join(path, ".")]
	return f, ok
}

// flip turns "constant op field" into "field op' constant".
var flip = map[string]string{
	operators.Less: operators.Greater, operators.LessEquals: operators.GreaterEquals,
	operators.Greater: operators.Less, operators.GreaterEquals: operators.LessEquals,
	operators.Equals: operators.Equals, operators.NotEquals: operators.NotEquals,
}

func comparison(op string, a, b celast.Expr) (pred, bool) {
	f, ok := field(a)
	lit := b
	if !ok {
		if f, ok = field(b); !ok {
			return nil, false
		}
		lit, op = a, flip[op]
	}
	if lit.Kind() != celast.LiteralKind {
		return nil, false
	}
	id := f.id
	switch v := lit.AsLiteral().(type) {
	case types.Int:
		if f.kind != reflect.Int64 {
			return nil, false
		}
		return ordered(op, func(x Fields) int64 { return x.Int(id) }, int64(v))
	case types.Double:
		if f.kind != reflect.Float64 {
			return nil, false
		}
		return ordered(op, func(x Fields) float64 { return x.Float(id) }, float64(v))
	case types.String:
		if f.kind != reflect.String {
			return nil, false
		}
		return ordered(op, func(x Fields) string { return x.String(id) }, string(v))
	case types.Bool:
		if f.kind != reflect.Bool || (op != operators.Equals && op != operators.NotEquals) {
			return nil, false
		}
		want := bool(v) == (op == operators.Equals)
		return func(x Fields) bool { return x.Bool(id) == want }, true
	}
	return nil, false
}

func ordered[T int64 | float64 | string](op string, get func(Fields) T, v T) (pred, bool) {
	switch op {
	case operators.Equals:
		return func(x Fields) bool { return get(x) == v }, true
	case operators.NotEquals:
		return func(x Fields) bool { return get(x) != v }, true
	case operators.Less:
		return func(x Fields) bool { return get(x) < v }, true
	case operators.LessEquals:
		return func(x Fields) bool { return get(x) <= v }, true
	case operators.Greater:
		return func(x Fields) bool { return get(x) > v }, true
	case operators.GreaterEquals:
		return func(x Fields) bool { return get(x) >= v }, true
	}
	return nil, false
}

// membership is player.<field> in [constants].
func membership(a, list celast.Expr) (pred, bool) {
	f, ok := field(a)
	if !ok || list.Kind() != celast.ListKind || len(list.AsList().OptionalIndices()) > 0 {
		return nil, false
	}
	id := f.id
	var ints []int64
	var strs []string
	for _, el := range list.AsList().Elements() {
		if el.Kind() != celast.LiteralKind {
			return nil, false
		}
		switch v := el.AsLiteral().(type) {
		case types.Int:
			if f.kind != reflect.Int64 {
				return nil, false
			}
			ints = append(ints, int64(v))
		case types.String:
			if f.kind != reflect.String {
				return nil, false
			}
			strs = append(strs, string(v))
		default:
			return nil, false
		}
	}
	if f.kind == reflect.Int64 {
		return func(x Fields) bool {
			got := x.Int(id)
			for _, v := range ints {
				if got == v {
					return true
				}
			}
			return false
		}, true
	}
	if f.kind == reflect.String {
		return func(x Fields) bool {
			got := x.String(id)
			for _, v := range strs {
				if got == v {
					return true
				}
			}
			return false
		}, true
	}
	return nil, false
}

// Fast reports whether the rule has a fast path.
func (p *Program) Fast() bool { return p.fast != nil }

// MatchFields evaluates a player rule through its fast path; ErrNoFastPath when it has none.
func (p *Program) MatchFields(x Fields) (bool, error) {
	if p.fast == nil {
		return false, ErrNoFastPath
	}
	return p.fast(x), nil
}
