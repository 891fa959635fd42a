package export

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendRecord appends r as one NDJSON line, byte for byte what encoding/json's Encoder
// writes (tested), at a fraction of its CPU: the outcomes table is the export's hot path
// (docs/benchmarks.md).
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(r.Schema), 10)
	b = append(b, `,"brand":`...)
	b = appendString(b, r.Brand)
	b = append(b, `,"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","player":`...)
	b = appendString(b, r.Player)
	b = append(b, `,"decision_id":`...)
	b = appendString(b, r.DecisionID)
	b = appendOptional(b, `,"campaign":`, r.Campaign)
	b = appendOptional(b, `,"step":`, r.Step)
	b = append(b, `,"kind":`...)
	b = appendString(b, r.Kind)
	b = appendOptional(b, `,"category":`, r.Category)
	b = append(b, `,"result":`...)
	b = appendString(b, r.Result)
	b = appendOptional(b, `,"reason":`, r.Reason)
	b = appendOptional(b, `,"channel":`, r.Channel)
	b = appendOptional(b, `,"provider":`, r.Provider)
	b = appendOptional(b, `,"locale":`, r.Locale)
	if r.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(r.Attempt), 10)
	}
	if r.CostMicros != 0 {
		b = append(b, `,"cost_micros":`...)
		b = strconv.AppendInt(b, r.CostMicros, 10)
	}
	b = appendOptional(b, `,"currency":`, r.Currency)
	if r.Test {
		b = append(b, `,"test":true`...)
	}
	b = appendOptional(b, `,"variant":`, r.Variant)
	return append(b, "}\n"...)
}

// appendOptional appends key and s unless s is empty (omitempty).
func appendOptional(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendString appends s quoted: as is when it is printable ASCII that encoding/json does
// not escape (ids, names, hashes: nearly always), otherwise as encoding/json quotes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
