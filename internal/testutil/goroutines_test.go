package testutil

import "testing"

// startBlocked starts one goroutine that waits for release.
func startBlocked(release <-chan struct{}, done chan<- struct{}) {
	go func() {
		<-release
		close(done)
	}()
}

// TestGoroutines counts the goroutines a function started while they
// live, and none once they are gone.
func TestGoroutines(t *testing.T) {
	const name = "github.com/tokengate/tokengate/internal/testutil.startBlocked"
	if n := Goroutines(name); n != 0 {
		t.Fatalf("Goroutines before = %d, want 0", n)
	}
	release, done := make(chan struct{}), make(chan struct{})
	startBlocked(release, done)
	if n := Goroutines(name); n != 1 {
		t.Fatalf("Goroutines while running = %d, want 1", n)
	}
	close(release)
	<-done
	WaitFor(t, "the goroutine to end", func() bool { return Goroutines(name) == 0 })
	if n := Goroutines("github.com/tokengate/tokengate/internal/testutil.nothing"); n != 0 {
		t.Errorf("Goroutines of a function that started none = %d", n)
	}
}
