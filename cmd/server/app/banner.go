package app

import (
	"fmt"
	"io"
	"strings"
)

// PrintDevBanner tells a --dev user where everything is and how to get a
// token, in a form meant to be copied. It prints nothing unless cfg.Dev.
func (a *App) PrintDevBanner(w io.Writer) {
	if a.dev == nil {
		return
	}
	base := a.URL()
	id, secret := a.devClient.ID, a.devClient.Secret
	tokenCurl := fmt.Sprintf("curl -s -X POST %s/token -u %s:%s", base, id, secret)
	itemsCurl := fmt.Sprintf(`curl -s %s/items -H "Authorization: Bearer $(%s | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"`, base, tokenCurl)
	var b strings.Builder
	fmt.Fprintf(&b, "\ntokengate is running in development mode (--dev): its own authorization server\n")
	fmt.Fprintf(&b, "issues the tokens. Nothing here is meant for production.\n\n")
	fmt.Fprintf(&b, "  API               %s/\n", base)
	fmt.Fprintf(&b, "  interactive docs  %s/docs\n", base)
	fmt.Fprintf(&b, "  dev issuer        %s\n", a.issuer)
	fmt.Fprintf(&b, "  dev client        %s / %s (scope %s)\n", id, secret, a.cfg.TokenScope)
	fmt.Fprintf(&b, "  validation mode   %s\n\n", a.cfg.Mode)
	fmt.Fprintf(&b, "Get a token:\n\n  %s\n\n", tokenCurl)
	fmt.Fprintf(&b, "Call /items with a fresh token:\n\n  %s\n\n", itemsCurl)
	fmt.Fprintf(&b, "Stop with Ctrl-C.\n\n")
	_, _ = io.WriteString(w, b.String())
}
