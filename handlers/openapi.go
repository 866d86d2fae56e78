package handlers

import (
	"bytes"
	_ "embed" // openapi.json.tmpl
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
)

// GET /openapi.json serves an OpenAPI 3.1 document for every route New
// registers, except the documentation's own routes (docsRoutes), which
// are not part of the API (FastAPI leaves out its /docs and /openapi.json
// the same way). A test compares the document with the router both ways,
// and validates it with kin-openapi.
//
// The document is rendered once per Server from openapi.json.tmpl: the
// required scope, the realm's challenges and the example bodies come from
// the same values the handlers send, so the examples cannot drift from the
// responses either. servers[0].url is the one part that depends on the
// request; the rendered document is kept split around it.

//go:embed openapi.json.tmpl
var openAPITemplateText string

// openAPITemplate is parsed once; it is never modified afterwards.
var openAPITemplate = template.Must(template.New("openapi.json.tmpl").
	Option("missingkey=error").
	Funcs(template.FuncMap{
		"json": templateJSON,
		"esc":  templateEscape,
	}).
	Parse(openAPITemplateText))

// serverURLPlaceholder stands in for servers[0].url while the template
// renders; it must occur nowhere else in the document.
const serverURLPlaceholder = "\x00tokengate:server-url\x00"

// openAPIData is what openapi.json.tmpl renders. Body* fields are JSON
// documents the handlers send; the rest are plain strings.
type openAPIData struct {
	Server       string
	Scope        string
	DefaultScope string

	BearerChallenge  string // no token
	InvalidChallenge string // an example of a bad token
	ScopeChallenge   string // insufficient scope
	BasicChallenge   string // /token without client credentials

	InvalidRequestChallenge string // an example of ambiguous credentials
	InvalidRequestDetail    string // its detail

	BodyHello            json.RawMessage
	BodyItems            json.RawMessage
	BodyItem             json.RawMessage
	BodyItemNotFound     json.RawMessage
	BodyBadItemID        json.RawMessage
	BodyNotAuthenticated json.RawMessage
	BodyForbidden        json.RawMessage
	BodyInternalError    json.RawMessage
	BodyUnsupportedGrant json.RawMessage
	BodyHealthy          json.RawMessage
	BodyReady            json.RawMessage

	MetricsContentType string // GET /metrics
	MetricsExample     string // the handlers' own series, all zero
}

// openAPIDoc is a rendered document, compact JSON, split around the
// servers URL so that serving it costs two copies and no encoding.
type openAPIDoc struct {
	head, tail []byte
}

// renderOpenAPI renders the document for s's configuration. It fails only
// if the template or the pre-encoded bodies are broken, which the tests
// would show for every configuration.
func (s *Server) renderOpenAPI() (*openAPIDoc, error) {
	invalid := s.appendInvalidChallenge(nil, auth.ReasonExpired.Description())

	data := openAPIData{
		Server:       serverURLPlaceholder,
		Scope:        s.cfg.RequiredScope,
		DefaultScope: s.cfg.DefaultScope,

		BearerChallenge:  string(s.bearerChallenge),
		InvalidChallenge: string(invalid),
		ScopeChallenge:   string(s.items.challenge),
		BasicChallenge:   string(s.basicChallenge),

		InvalidRequestChallenge: string(s.appendErrorChallenge(nil, "invalid_request", errSeveralAuthorization.detail)),
		InvalidRequestDetail:    errSeveralAuthorization.detail,

		BodyHello:            bodyHello,
		BodyItems:            bodyItems,
		BodyItem:             catalogue[0].body,
		BodyItemNotFound:     bodyItemNotFound,
		BodyBadItemID:        bodyBadItemID,
		BodyNotAuthenticated: bodyNotAuthenticated,
		BodyForbidden:        s.items.body,
		BodyInternalError:    bodyInternalError,
		BodyUnsupportedGrant: bodyUnsupportedGrant,
		BodyHealthy:          bodyHealthy,
		BodyReady:            bodyReady,

		MetricsContentType: MetricsContentType,
		MetricsExample:     string(new(requestCounters).appendMetrics(nil)),
	}
	var rendered bytes.Buffer
	if err := openAPITemplate.Execute(&rendered, data); err != nil {
		return nil, fmt.Errorf("handlers: rendering the OpenAPI document: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, rendered.Bytes()); err != nil {
		return nil, fmt.Errorf("handlers: the rendered OpenAPI document is not JSON: %w", err)
	}
	placeholder, err := json.Marshal(serverURLPlaceholder)
	if err != nil {
		return nil, fmt.Errorf("handlers: encoding the servers placeholder: %w", err)
	}
	head, tail, ok := bytes.Cut(compact.Bytes(), placeholder)
	if !ok || bytes.Contains(tail, placeholder) {
		return nil, fmt.Errorf("handlers: the OpenAPI document must hold the servers placeholder exactly once")
	}
	return &openAPIDoc{head: head, tail: tail}, nil
}

// serve answers GET /openapi.json.
func (d *openAPIDoc) serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetContentTypeBytes(contentTypeJSON)
	h.Set(headerCacheControl, "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "X-Forwarded-Proto")
	var buf [128]byte
	server := appendServerURL(buf[:0], ctx)
	// server holds only the characters validHost allows, so quoting it is
	// enough to make it a JSON string.
	body := make([]byte, 0, len(d.head)+len(server)+2+len(d.tail))
	body = append(body, d.head...)
	body = append(body, '"')
	body = append(body, server...)
	body = append(body, '"')
	body = append(body, d.tail...)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.SetBodyRaw(body)
}

// appendServerURL appends the origin the request reached: its scheme
// (https on TLS or behind a proxy that says X-Forwarded-Proto: https) and
// its Host header. Without a usable Host it appends "/", which OpenAPI
// reads as the origin the document was fetched from.
func appendServerURL(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	host := ctx.Request.Header.Host()
	if !validHost(host) {
		return append(dst, '/')
	}
	scheme := "http://"
	if ctx.IsTLS() || forwardedHTTPS(ctx.Request.Header.Peek("X-Forwarded-Proto")) {
		scheme = "https://"
	}
	dst = append(dst, scheme...)
	return append(dst, host...)
}

// forwardedHTTPS reports whether the first X-Forwarded-Proto value is
// https.
func forwardedHTTPS(v []byte) bool {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.EqualFold(string(bytes.TrimSpace(v)), "https")
}

// validHost reports whether h is a plausible host[:port] (a name, an IPv4
// address or a bracketed IPv6 address), using only characters that need
// no escaping in JSON or in a URL. Anything else is not reflected.
func validHost(h []byte) bool {
	if len(h) == 0 || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// templateJSON encodes v for the template: a string becomes a JSON string,
// a json.RawMessage is checked and kept as it is.
func templateJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// templateEscape escapes s for use inside a JSON string in the template.
func templateEscape(s string) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return string(b[1 : len(b)-1]), nil
}
