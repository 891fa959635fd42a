// Package clock is the time source the dispatcher's parts take, so tests can set it.
package clock

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Func returns the current time; the zero value is time.Now.
type Func func() time.Time

// Now is f(), or time.Now() when f is nil.
func (f Func) Now() time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}

var zones sync.Map // zone name -> *time.Location

// Location loads an IANA zone once; later calls are a map lookup (time.LoadLocation reads
// the zone database every time).
func Location(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	zones.Store(name, l)
	return l, nil
}

// DefaultZone is the time zone of a player or policy that names none (the API's default).
const DefaultZone = "Asia/Baku"

// ProcessCPU is the CPU time (user and system) this process has used so far; benchmarks
// report the difference over what they measure.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
