package main

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestServeChildProtocol drives a fasthttp server child in this process
// through its line protocol: ready, usage, and exit when stdin ends.
func TestServeChildProtocol(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errb strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- serveChild(roleFasthttp, nil, func(string) string { return "" }, inR, outW, &errb)
		_ = outW.Close()
	}()
	out := bufio.NewReader(outR)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if !ok {
		t.Fatalf("first line %q, want ready <addr>", line)
	}
	status, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/items", 5*time.Second)
	if err != nil || status != fasthttp.StatusOK || string(body) != string(bareItemsBody) {
		t.Fatalf("GET /items: %d %q %v", status, body, err)
	}
	if _, err := io.WriteString(inW, "usage\n"); err != nil {
		t.Fatal(err)
	}
	line, err = out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var u childUsage
	if err := json.Unmarshal([]byte(line), &u); err != nil {
		t.Fatalf("usage line %q: %v", line, err)
	}
	if processCPU() >= 0 && u.CPUNanos <= 0 {
		t.Errorf("usage %+v: want the process's CPU time", u)
	}
	_ = inW.Close()
	if c := <-code; c != exitOK {
		t.Errorf("exit %d, stderr %q", c, errb.String())
	}
}

func TestServeChildRefuses(t *testing.T) {
	tests := []struct {
		name, role, input, want string
		args                    []string
	}{
		{name: "unknown role", role: "nginx", want: `unknown role "nginx"`},
		{name: "fasthttp takes no argument", role: roleFasthttp, args: []string{"--x"}, want: "unexpected argument"},
		{name: "bad tokengate flags", role: roleTokengate, args: []string{"--validation-mode=psychic"}, want: "VALIDATION_MODE"},
		{name: "unknown request", role: roleFasthttp, input: "stats\n", want: `unknown request "stats"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			code := serveChild(tc.role, tc.args, func(string) string { return "" }, strings.NewReader(tc.input), &out, &errb)
			if code != exitFail || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), exitFail, tc.want)
			}
		})
	}
}
