package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

// runMainEnv makes this test binary run main instead of the tests (see
// TestMain): TestSecondSignal starts the real process that way.
const runMainEnv = "TOKENGATE_TEST_RUN_MAIN"

// startMain runs this test binary as tokengate (main, with args) in an
// empty directory (no .env), its stderr to stderr when not nil, and kills
// it when the test ends; exited receives cmd.Wait's result.
func startMain(t *testing.T, stderr io.Writer, args ...string) (cmd *exec.Cmd, exited <-chan error) {
	t.Helper()
	cmd = exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Dir = t.TempDir()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		result <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd, result
}

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// TestSecondSignal: the first SIGTERM starts the drain (here 10 minutes
// long, /readyz 503); a second one ends the process at once, by the
// signal's default action, as an operator pressing Ctrl-C twice expects.
func TestSecondSignal(t *testing.T) {
	port := testutil.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd, exited := startMain(t, nil, "--dev", "--listen-addr="+addr, "--shutdown-drain-delay=10m")

	client := &http.Client{Timeout: 5 * time.Second}
	readyz := func() int {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testutil.WaitFor(t, "the server to be ready", func() bool { return readyz() == http.StatusOK })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the drain to start", func() bool { return readyz() == http.StatusServiceUnavailable })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("process ended with %v, want killed by SIGTERM", err)
		}
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("process ended with %v, want killed by SIGTERM", fmt.Sprint(ee))
		}
	case <-time.After(time.Minute): // the drain alone would take 10
		t.Fatal("the second SIGTERM did not end the process: it is still draining")
	}
}
