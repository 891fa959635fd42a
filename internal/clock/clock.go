// Package clock is the time source the dispatcher's parts take, so tests can set it.
package clock

import "time"

// Func returns the current time; the zero value is time.Now.
type Func func() time.Time

// Now is f(), or time.Now() when f is nil.
func (f Func) Now() time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}
