//go:build unix

package main

import "syscall"

// processCPU returns the user plus system CPU time this process has used,
// in nanoseconds (getrusage RUSAGE_SELF), or -1 if it cannot tell.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
