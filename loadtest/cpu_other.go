//go:build !unix

package main

// processCPU returns -1: this platform has no getrusage, so reports leave
// the server's CPU time out.
func processCPU() int64 { return -1 }
