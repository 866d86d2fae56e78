//go:build !linux

package main

import (
	"errors"
	"time"
)

var errNoCPU = errors.New("cpu: process CPU time is read on Linux only")

// groupCPU is not available here; the CPU counters are left out.
func groupCPU(int) (time.Duration, error) { return 0, errNoCPU }

// selfCPU is not available here; the CPU counters are left out.
func selfCPU() (time.Duration, error) { return 0, errNoCPU }
