package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// groupCPU returns the CPU time (user and system) that the live processes
// of process group pgid have used so far, read from /proc.
func groupCPU(pgid int) (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var ticks int64
	found := false
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // the process has gone
		}
		// pid (comm) state ppid pgrp … utime stime: comm may hold spaces
		// and parentheses, so the fields start after the last ')'.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(data[i+1:])
		if len(f) < 13 {
			continue
		}
		if pg, err := strconv.Atoi(string(f[2])); err != nil || pg != pgid {
			continue
		}
		utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
		stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("cpu: %s: bad utime or stime", path)
		}
		ticks += utime + stime
		found = true
	}
	if !found {
		return 0, fmt.Errorf("cpu: no process in group %d", pgid)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// selfCPU returns the CPU time (user and system) this process has used so
// far: load generator, tokengate and upstream together.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("cpu: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
