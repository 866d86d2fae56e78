package promtext_test

import (
	"os"

	"github.com/tokengate/tokengate/internal/promtext"
)

// A component renders its own families: unlabelled ones in one call, and
// a labelled family from counters indexed by a small integer type (here a
// rejection reason) in a header and a loop.
func Example() {
	type reason uint8
	const (
		reasonExpired reason = iota
		reasonSignature
		reasonAudience
		numReasons
	)
	names := [numReasons]string{reasonExpired: "expired", reasonSignature: "signature", reasonAudience: "audience"}
	rejections := [numReasons]uint64{reasonExpired: 7, reasonSignature: 2}

	b := promtext.AppendCounter(nil, "example_checks_total", "Tokens checked.", 12)
	b = promtext.AppendGauge(b, "example_keys", "Signing keys loaded.", 3)

	const name = "example_rejections_total"
	b = promtext.AppendHeader(b, name, promtext.Counter, "Tokens rejected, by reason.")
	for r, n := range rejections {
		b = promtext.AppendUintSample(b, name, n, "reason", names[r])
	}
	os.Stdout.Write(b)
	// Output:
	// # HELP example_checks_total Tokens checked.
	// # TYPE example_checks_total counter
	// example_checks_total 12
	// # HELP example_keys Signing keys loaded.
	// # TYPE example_keys gauge
	// example_keys 3
	// # HELP example_rejections_total Tokens rejected, by reason.
	// # TYPE example_rejections_total counter
	// example_rejections_total{reason="expired"} 7
	// example_rejections_total{reason="signature"} 2
	// example_rejections_total{reason="audience"} 0
}
