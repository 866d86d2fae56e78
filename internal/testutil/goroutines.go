package testutil

import (
	"bytes"
	"runtime"
)

// Goroutines counts the live goroutines that the function createdBy
// started, named as runtime.Stack names it (package path and function,
// e.g. "example.com/pkg.NewThing"), so that a test can check that what a
// constructor starts, its Close stops.
func Goroutines(createdBy string) int {
	marker := []byte("created by " + createdBy + " ")
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], marker)
		}
		buf = make([]byte, 2*len(buf))
	}
}
