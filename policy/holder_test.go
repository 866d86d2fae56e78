package policy

import (
	"errors"
	"path/filepath"
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
