package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// serverStartTimeout bounds how long a server child may take to say it is
// ready (tokengate: discovery and the first JWKS fetch).
const serverStartTimeout = 15 * time.Second

// serverStopTimeout bounds a server child's graceful exit once its stdin
// is closed; then it is killed.
const serverStopTimeout = 15 * time.Second

// serverProcess is a server child (see serveRoleEnv): the server under
// test in a process of its own. One goroutine owns it and calls close,
// which ends it.
type serverProcess struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string // host:port it serves on
}

// startServerProcess re-executes this binary as a server child in role
// with args and extra environment variables, and waits until it serves.
// ctx bounds the child's whole life: when it ends, the child is killed.
func startServerProcess(ctx context.Context, role string, args, env []string, stderr io.Writer) (*serverProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("server process: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(append(os.Environ(), serveRoleEnv+"="+role), env...)
	cmd.Stderr = stderr
	cmd.WaitDelay = serverStopTimeout
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("server process: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("server process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("server process: %w", err)
	}
	p := &serverProcess{cmd: cmd, in: in, out: bufio.NewReader(out)}

	// The first line comes from a goroutine so that a child that hangs
	// cannot hang the run; killing the child ends the read.
	ready := make(chan error, 1)
	go func() {
		line, err := p.readLine()
		if err == nil {
			var ok bool
			if p.addr, ok = strings.CutPrefix(line, "ready "); !ok {
				err = fmt.Errorf("unexpected first line %q", line)
			}
		}
		ready <- err
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case err = <-ready:
	case <-timer.C:
		err = fmt.Errorf("not ready within %v", serverStartTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-ready
		_ = cmd.Wait()
		return nil, fmt.Errorf("server process (%s): %w", role, err)
	}
	return p, nil
}

func (p *serverProcess) readLine() (string, error) {
	line, err := p.out.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the server process ended (see its error above)")
		}
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// usage asks the child for its CPU time and counters.
func (p *serverProcess) usage() (childUsage, error) {
	var u childUsage
	if _, err := io.WriteString(p.in, "usage\n"); err != nil {
		return u, fmt.Errorf("server process: %w", err)
	}
	line, err := p.readLine()
	if err != nil {
		return u, fmt.Errorf("server process: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &u); err != nil {
		return u, fmt.Errorf("server process: usage %q: %w", line, err)
	}
	return u, nil
}

// close ends the child: it closes its stdin (the child shuts down and
// exits), waits up to serverStopTimeout, then kills it and waits.
func (p *serverProcess) close() error {
	_ = p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	timer := time.NewTimer(serverStopTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("server process: %w", err)
		}
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("server process: did not exit within %v; killed", serverStopTimeout)
	}
}
