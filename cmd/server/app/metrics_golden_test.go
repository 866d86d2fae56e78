package app

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/config"
)

// versionLabel matches the version and go_version labels of
// tokengate_info, which depend on the build.
var versionLabel = regexp.MustCompile(`version="[^"]*"`)

// shapeOf returns a scrape with every sample's value replaced by "V" and
// the build's versions by "X": what stays is the families, their order,
// HELP and TYPE lines and the label sets, which must not change unless a
// metric is added or renamed on purpose.
func shapeOf(text string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			line = line[:strings.LastIndexByte(line, ' ')] + " V\n"
			line = versionLabel.ReplaceAllString(line, `version="X"`)
		}
		b.WriteString(line)
	}
	return b.String()
}

// TestMetricsGolden compares the shape of a whole /metrics scrape in each
// mode with testdata/metrics-<mode>.golden. After adding or renaming a
// metric on purpose, regenerate the files with
// TOKENGATE_UPDATE_GOLDEN=1 go test -run TestMetricsGolden ./cmd/server/app/
// and review the diff.
func TestMetricsGolden(t *testing.T) {
	for _, mode := range []config.Mode{config.ModeLocal, config.ModeRemote, config.ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			a := start(t, devConfig(t, "--validation-mode="+string(mode)), Options{})
			waitReady(t, a)
			code, body := get(t, client(a, nil), "/metrics", "")
			if code != 200 {
				t.Fatalf("GET /metrics = %d", code)
			}
			checkMetricsGolden(t, body, "metrics-"+string(mode)+".golden")
		})
	}
}

// checkMetricsGolden compares the shape of the scrape body with
// testdata/name, or rewrites that file when TOKENGATE_UPDATE_GOLDEN is
// set.
func checkMetricsGolden(t *testing.T, body, name string) {
	t.Helper()
	got := shapeOf(body)
	file := filepath.Join("testdata", name)
	if os.Getenv("TOKENGATE_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the /metrics shape changed; got:\n%s\nwant (%s):\n%s", got, file, want)
	}
}
