// Package testutil holds test-only helpers shared by tokengate's packages:
// a manual clock, loopback port helpers and a poll-until helper.
//
// Only _test.go files import it, and it imports only the standard
// library, so that the tests of every package (auth's in-package tests
// included) can use it without an import cycle. Its helpers take
// testing.TB and fail the test themselves.
package testutil
