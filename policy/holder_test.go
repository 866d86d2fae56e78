package policy

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

func TestHolderReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	clock := testutil.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	start := clock.Now()
	h := NewHolder(Default("items:read"), clock.Now)
	if h.Load().Name() != "(default policy)" || h.Rules() != 0 || !h.LoadedAt().Equal(start) {
		t.Fatalf("new holder: %q, %d rules, loaded at %v", h.Load().Name(), h.Rules(), h.LoadedAt())
	}

	steps := []struct {
		name     string
		content  string // "" leaves the file as it is (or absent)
		wantErr  bool
		wantRule int // rules after the step
		wantAt   time.Duration
	}{
		{name: "missing file keeps the default", wantErr: true, wantRule: 0, wantAt: 0},
		{name: "good file", content: "routes:\n  - path: /a\n  - path: /b\n", wantRule: 2, wantAt: 2 * time.Minute},
		{name: "bad file keeps the good one", content: "routes:\n  - path: /a\n    bogus: 1\n", wantErr: true, wantRule: 2, wantAt: 2 * time.Minute},
		{name: "next good file", content: "routes:\n  - path: /c\n", wantRule: 1, wantAt: 4 * time.Minute},
	}
	for _, s := range steps {
		clock.Advance(time.Minute)
		if s.content != "" {
			writeFile(t, file, s.content)
		}
		before := h.Load()
		err := h.Reload(file)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: Reload error %v, want error %v", s.name, err, s.wantErr)
		}
		var pe *Error
		if err != nil && s.content != "" && !errors.As(err, &pe) {
			t.Errorf("%s: error %v is not a *Error", s.name, err)
		}
		if err != nil && h.Load() != before {
			t.Errorf("%s: a failed Reload replaced the policy", s.name)
		}
		if h.Rules() != s.wantRule || !h.LoadedAt().Equal(start.Add(s.wantAt)) {
			t.Errorf("%s: %d rules loaded at %v, want %d at %v", s.name, h.Rules(), h.LoadedAt(), s.wantRule, start.Add(s.wantAt))
		}
	}
}

// TestHolderConcurrent reloads while readers match: run under -race.
func TestHolderConcurrent(t *testing.T) {
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")}
	writeFile(t, files[0], "default: public\n")
	writeFile(t, files[1], "default: deny\n")
	h := NewHolder(Default(""), nil)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := h.Load()
				if r := p.Match(nil, []byte("GET"), []byte("/x")); r == nil {
					t.Error("nil rule")
					return
				}
				_ = h.LoadedAt()
				_ = h.Rules()
			}
		})
	}
	for i := range 50 {
		if err := h.Reload(files[i%2]); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if got := h.Load().Name(); got != files[1] {
		t.Errorf("policy %q after the last reload, want %q", got, files[1])
	}
}

func TestNewHolderNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewHolder(nil) did not panic")
		}
	}()
	NewHolder(nil, nil)
}

// TestHolderReloadIssuers: the issuers are built into validators once, at
// start, so a reload must not swap in a file whose issuers: list differs
// (an issuer removed from the file would go on being trusted while
// tokengate logs a good reload). Moving the list in the file is fine.
func TestHolderReloadIssuers(t *testing.T) {
	const issuers = `issuers:
  - name: a
    issuer: https://a.example.com/
  - name: b
    issuer: https://b.example.com/
    mode: remote
    client_id_env: B_ID
    client_secret_env: B_SECRET
    allowed_client_ids: [c1]
`
	file := filepath.Join(t.TempDir(), "policy.yaml")
	h := NewHolder(mustParse(t, "default: authenticated\n"+issuers), nil)
	for _, tc := range []struct {
		name    string
		content string
		ok      bool
	}{
		{"same issuers, other lines and rules", "default: deny\nroutes:\n  - path: /a\n    issuers: [b]\n\n" + issuers, true},
		{"an issuer removed", "default: authenticated\nissuers:\n  - name: a\n    issuer: https://a.example.com/\n", false},
		{"no issuers list", "default: authenticated\n", false},
		{"an issuer added", "default: authenticated\n" + issuers + "  - name: c\n    issuer: https://c.example.com/\n", false},
		{"an issuer's setting changed", "default: authenticated\n" + strings.Replace(issuers, "[c1]", "[c1, c2]", 1), false},
		{"reordered", "default: authenticated\n" + issuers[:9] + issuers[strings.Index(issuers, "  - name: b"):] + issuers[9:strings.Index(issuers, "  - name: b")], false},
	} {
		writeFile(t, file, tc.content)
		before := h.Load()
		err := h.Reload(file)
		if tc.ok {
			if err != nil || h.Load() == before {
				t.Errorf("%s: Reload error %v, policy replaced %v", tc.name, err, h.Load() != before)
			}
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "issuers") {
			t.Errorf("%s: Reload error %v, want a *Error about the issuers", tc.name, err)
		}
		if h.Load() != before {
			t.Errorf("%s: a refused Reload replaced the policy", tc.name)
		}
	}
}
