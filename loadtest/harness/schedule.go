package harness

import (
	"math"
	"time"
)

// Schedule is the open-loop timetable: request i is due at offset
// i / Rate from the start of the run, whatever happened to the requests
// before it.
type Schedule struct {
	Rate float64 // requests per second, > 0
}

// At returns the intended send offset of request i (counted from 0).
func (s Schedule) At(i int64) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / s.Rate)
}

// Count returns how many requests are due in [0, d): the number of i with
// At(i) < d.
func (s Schedule) Count(d time.Duration) int64 {
	if d <= 0 || s.Rate <= 0 {
		return 0
	}
	n := int64(math.Ceil(d.Seconds() * s.Rate))
	// Settle float rounding against At, which is what the workers use.
	for n > 0 && s.At(n-1) >= d {
		n--
	}
	for s.At(n) < d {
		n++
	}
	return n
}
