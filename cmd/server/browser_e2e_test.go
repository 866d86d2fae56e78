//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tokengate/tokengate/devissuer"
)

// The browser test: `make e2e` (go test -tags e2e -run Browser ./cmd/server/).
//
// Environment:
//   - CHROMIUM: the browser to drive (default /usr/bin/chromium, else
//     chromium on PATH).
//   - CI: when set, a missing Chromium fails the test instead of skipping it.
//   - E2E_ARTIFACTS: where a failing run leaves its screenshot, page HTML and
//     console log (default: $TMPDIR/tokengate-e2e-artifacts).
//   - UPDATE_SCREENSHOT=1: a passing run rewrites docs/swagger-ui.png, the
//     README's screenshot.

const (
	chromiumPath = "/usr/bin/chromium"
	installHint  = "apt-get install -y chromium"

	// listItems is Swagger UI's element for GET /items: "operations-" +
	// tag + "-" + operationId.
	listItems = "#operations-items-listItems"

	stepTimeout = 30 * time.Second
)

// findChromium returns the Chromium to drive. Outside CI a machine without
// one skips the test; in CI that is a failure.
func findChromium(t *testing.T) string {
	t.Helper()
	want := os.Getenv("CHROMIUM")
	if want != "" {
		if _, err := os.Stat(want); err == nil {
			return want
		}
	} else {
		want = chromiumPath
		if _, err := os.Stat(chromiumPath); err == nil {
			return chromiumPath
		}
		if p, err := exec.LookPath("chromium"); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skipf("Chromium is not installed (%s); install it with: %s", want, installHint)
	}
	t.Fatalf("CI is set and Chromium is not installed (%s); the CI script must run: %s", want, installHint)
	return ""
}

// browser is one headless Chromium tab and what its page wrote to the
// console.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab; lives until the test's cleanup

	mu      sync.Mutex // guards console
	console []chromedp.ConsoleMessage
}

// newBrowser starts Chromium with a fresh profile and opens one tab. The
// browser and the console reader stop at cleanup.
func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true), // small /dev/shm in containers
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx}

	// The first Run starts the browser; it must not carry a timeout, which
	// would stop the browser with it. Starting is bounded by chromedp's own
	// 20s wait for the DevTools address.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting %s: %v", exe, err)
	}
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return // the tab is closing
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		wg.Wait()
	})
	return b
}

// consoleLog returns the console messages so far, one a line.
func (b *browser) consoleLog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	for _, m := range b.console {
		fmt.Fprintf(&s, "%s %s", m.Time.Format(time.RFC3339Nano), m)
		if m.Source != "" {
			fmt.Fprintf(&s, " [%s]", m.Source)
		}
		if m.URL != "" {
			fmt.Fprintf(&s, " (%s:%d)", m.URL, m.Line+1)
		}
		s.WriteByte('\n')
	}
	return s.String()
}

// consoleCount returns how many console messages the page wrote.
func (b *browser) consoleCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.console)
}

// pageProblems returns the console messages that mean the page is broken:
// uncaught exceptions and anything the content security policy refused.
// (A 401 logged as a failed resource load is expected, and not one.)
func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// fail saves a screenshot, the page's HTML and the console log, and
// stops the test, saying where they are.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	dir := os.Getenv("E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tokengate-e2e-artifacts")
	}
	dir = filepath.Join(dir, b.t.Name())
	var saved []string
	save := func(name string, data []byte) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Logf("artifacts: %v", err)
			return
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.t.Logf("artifacts: %v", err)
			return
		}
		saved = append(saved, p)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		save("screenshot.png", png)
	} else {
		b.t.Logf("no screenshot: %v", err)
	}
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
		save("page.html", []byte(html))
	}
	save("console.log", []byte(b.consoleLog()))
	b.t.Fatalf("%s: %v\nartifacts (screenshot, page, console log):\n  %s", what, err, strings.Join(saved, "\n  "))
}

// do runs actions as one step, bounded by stepTimeout.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// js returns v as a JavaScript literal.
func js(v any) string {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// waitText waits until the element sel shows text containing every one of
// want, and returns its text. On timeout it fails with the text it had.
func (b *browser) waitText(what, sel string, want ...string) string {
	b.t.Helper()
	cond := fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false; const t = e.innerText; return %s.every(w => t.includes(w)) && t; })()`, js(sel), js(want))
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Poll[string](cond, chromedp.WithPollingTimeout(stepTimeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		got, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.innerText : "(no element)"; })()`, js(sel))))
		b.fail(what, fmt.Errorf("%s never showed %q; it shows %q: %w", sel, want, got, err))
	}
	return text
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// TestBrowserDocs drives Swagger UI at /docs in headless Chromium against
// tokengate --dev: the page lists the operations; GET /items without
// authorization shows 401; Authorize with the dev client's credentials
// obtains a token through tokengate's /token; GET /items then shows 200
// and the items. The page must raise no exception and no content security
// policy violation along the way.
func TestBrowserDocs(t *testing.T) {
	exe := findChromium(t)
	s := startServer(t, []string{"--dev"}, nil, nil)
	s.keysReady(t)
	b := newBrowser(t, exe)
	t.Logf("tokengate --dev at %s; driving %s", s.base, exe)

	// 1. The page lists the operations.
	b.do("open /docs", chromedp.Navigate(s.base+"/docs"), chromedp.WaitVisible(chromedp.CSS(listItems)))
	ops := b.waitText("operations listed", "#swagger-ui", "/items", "/items/{id}", "/token", "/healthz", "/readyz", "/metrics",
		"/auth/forward", "/auth/request", "/auth/envoy/{path}")
	n := eval[int](b, "count operations", `document.querySelectorAll(".opblock").length`)
	t.Logf("1. /docs lists %d operations (%s)", n, strings.Join(strings.Fields(eval[string](b, "operation paths",
		`[...document.querySelectorAll(".opblock-summary-path")].map(e => e.innerText).join(" ")`)), " "))
	if n != 10 {
		b.fail("operations listed", fmt.Errorf("%d operations, want 10:\n%s", n, ops))
	}
	server := eval[string](b, "selected server", `(document.querySelector(".servers select") || {}).value || ""`)
	if server != s.base {
		b.fail("servers", fmt.Errorf("Swagger UI's server is %q, want %q", server, s.base))
	}

	// 2. Without authorizing: 401.
	b.do("try GET /items",
		chromedp.Click(chromedp.CSS(listItems+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(listItems+" .try-out__btn")),
		chromedp.Click(chromedp.CSS(listItems+" button.execute")),
	)
	b.waitText("GET /items without a token", listItems+" .live-responses-table tbody .response-col_status", "401")
	b.waitText("401 body", listItems+" .live-responses-table", "Not authenticated")
	t.Logf("2. GET /items without authorization: the page shows 401 Not authenticated")

	// 3. Authorize with the dev client; the id is pre-filled, the secret not.
	issued := s.Dev().Counts().Token
	b.do("open Authorize", chromedp.Click(chromedp.CSS(".auth-wrapper button.authorize")),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux input[data-name="clientSecret"]`)))
	id := eval[string](b, "client id", `document.querySelector('.modal-ux input[data-name="clientId"]').value`)
	secret := eval[string](b, "client secret", `document.querySelector('.modal-ux input[data-name="clientSecret"]').value`)
	if id != devissuer.DefaultClientID || secret != "" {
		b.fail("Authorize dialog", fmt.Errorf("client_id %q (want %q pre-filled), client_secret %d characters (want empty)", id, devissuer.DefaultClientID, len(secret)))
	}
	scope := eval[bool](b, "scope", `[...document.querySelectorAll('.modal-ux input[type="checkbox"]')].some(c => c.checked && c.dataset.value === "items")`)
	if !scope {
		b.fail("Authorize dialog", errors.New("scope items is not pre-selected"))
	}
	b.do("enter the secret and authorize",
		chromedp.SendKeys(chromedp.CSS(`.modal-ux input[data-name="clientSecret"]`), devissuer.DefaultClientSecret),
		chromedp.Click(chromedp.CSS(`.modal-ux button.authorize[aria-label="Apply given OAuth2 credentials"]`)),
	)
	b.waitText("authorized", ".modal-ux", "Authorized", "Logout")
	if got := s.Dev().Counts().Token; got != issued+1 {
		b.fail("authorized", fmt.Errorf("the dev issuer issued %d tokens, want 1", got-issued))
	}
	t.Logf("3. Authorize with %s / ****: the dialog says Authorized; the dev issuer issued one token through /token", id)
	b.do("close the dialog", chromedp.Click(chromedp.CSS(".modal-ux button.btn-done")),
		chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")))

	// 4. Execute again: 200 and the items, sent with the bearer token.
	b.do("execute GET /items again", chromedp.Click(chromedp.CSS(listItems+" button.execute")))
	b.waitText("GET /items with the token", listItems+" .live-responses-table tbody .response-col_status", "200")
	b.waitText("items shown", listItems+" .live-responses-table", "red ball", "blue square", "purple ellipse")
	b.waitText("bearer sent", listItems+" .curl-command", "Authorization: Bearer ")
	t.Logf("4. GET /items again: the page shows 200 with red ball, blue square, purple ellipse (curl line carries the bearer token)")

	if problems := b.pageProblems(); len(problems) > 0 {
		b.fail("console", fmt.Errorf("the page reported problems:\n%s", strings.Join(problems, "\n")))
	}
	t.Logf("5. no exception and no content security policy violation in the console (%d messages)", b.consoleCount())

	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		b.saveScreenshot(filepath.Join("..", "..", "docs", "swagger-ui.png"))
	}
}

// saveScreenshot writes the README's screenshot: the top of the page down
// to GET /items' live response body (200, the items).
func (b *browser) saveScreenshot(path string) {
	b.t.Helper()
	bottom := eval[float64](b, "screenshot height", fmt.Sprintf(
		`document.querySelector(%s).getBoundingClientRect().bottom + window.scrollY`,
		js(listItems+" .live-responses-table tbody .highlight-code")))
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, int64(bottom)+24),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
	); err != nil {
		b.fail("screenshot", err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail("screenshot", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	b.t.Logf("screenshot written to %s (%d bytes)", abs, len(png))
}
