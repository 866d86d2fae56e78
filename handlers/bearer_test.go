package handlers_test

import (
	"testing"
	"time"

	"github.com/tokengate/tokengate/handlers"
	"github.com/valyala/fasthttp"
)

// ambiguityCase is one request whose credentials may be ambiguous: each
// authorization is one Authorization header line, in order.
type ambiguityCase struct {
	name          string
	method        string // GET when empty
	authorization []string
	query         string // raw query, without '?'
	form          string // form-urlencoded body
	want          want
}

// Answers to ambiguous and unambiguous credentials.
var (
	wantSeveralHeaders = want{
		status: fasthttp.StatusBadRequest,
		body:   `{"detail":"more than one Authorization header"}`,
		header: map[string]string{
			"WWW-Authenticate": `Bearer realm="tokengate", error="invalid_request", error_description="more than one Authorization header"`,
			"Content-Type":     "application/json",
		},
	}
	wantSeveralMethods = want{
		status: fasthttp.StatusBadRequest,
		body:   `{"detail":"access token sent by more than one method"}`,
		header: map[string]string{
			"WWW-Authenticate": `Bearer realm="tokengate", error="invalid_request", error_description="access token sent by more than one method"`,
		},
	}
	wantNoToken = want{
		status: fasthttp.StatusUnauthorized,
		body:   `{"detail":"Not authenticated"}`,
		header: map[string]string{"WWW-Authenticate": `Bearer realm="tokengate"`},
	}
	wantWhoami = want{status: fasthttp.StatusOK, body: "svc-a/client-a"}
)

// TestAmbiguousCredentials: a request may carry one bearer token, by one
// method (RFC 6750 section 2). Two Authorization headers, in either order,
// or a header and an access_token parameter, are refused with 400
// invalid_request on every protected route, whichever of them is valid.
func TestAmbiguousCredentials(t *testing.T) {
	const forged = "forged-token" // the stub answers 401 to it
	cases := []ambiguityCase{
		{name: "valid then forged", authorization: []string{"Bearer " + tokGood, "Bearer " + forged}, want: wantSeveralHeaders},
		{name: "forged then valid", authorization: []string{"Bearer " + forged, "Bearer " + tokGood}, want: wantSeveralHeaders},
		{name: "the same token twice", authorization: []string{"Bearer " + tokGood, "Bearer " + tokGood}, want: wantSeveralHeaders},
		{name: "bearer then basic", authorization: []string{"Bearer " + tokGood, "Basic YTpi"}, want: wantSeveralHeaders},
		{name: "empty then valid", authorization: []string{"", "Bearer " + tokGood}, want: wantSeveralHeaders},
		{name: "header and query", authorization: []string{"Bearer " + tokGood}, query: "access_token=" + forged, want: wantSeveralMethods},
		{name: "header and the same token in the query", authorization: []string{"Bearer " + tokGood}, query: "a=1&access_token=" + tokGood, want: wantSeveralMethods},
		{name: "header and escaped query name", authorization: []string{"Bearer " + tokGood}, query: "access%5Ftoken=" + forged, want: wantSeveralMethods},
		{name: "header and empty query value", authorization: []string{"Bearer " + tokGood}, query: "access_token", want: wantSeveralMethods},
		{name: "header and form", method: fasthttp.MethodPost, authorization: []string{"Bearer " + tokGood}, form: "access_token=" + forged, want: wantSeveralMethods},
		// Unambiguous requests keep their answers.
		{name: "one header", authorization: []string{"Bearer " + tokGood}, want: wantWhoami},
		{name: "one header, other query", authorization: []string{"Bearer " + tokGood}, query: "token=x&access_tokens=y", want: wantWhoami},
		{name: "one header, post", method: fasthttp.MethodPost, authorization: []string{"Bearer " + tokGood}, form: "x=1", want: wantWhoami},
		{name: "query only", query: "access_token=" + tokGood, want: wantNoToken},
		{name: "basic and query", authorization: []string{"Basic YTpi"}, query: "access_token=" + tokGood, want: wantNoToken},
		{name: "forged header", authorization: []string{"Bearer " + forged}, want: want{status: fasthttp.StatusUnauthorized}},
	}
	s, err := handlers.New(handlers.Config{Validator: newAuthStub()})
	if err != nil {
		t.Fatal(err)
	}
	whoami := s.RequireScopeForTest("items", func(ctx *fasthttp.RequestCtx) {
		p := handlers.Principal(ctx)
		ctx.SetBodyString(p.Subject + "/" + p.ClientID)
	})
	s.Router().GET("/whoami", whoami)
	s.Router().POST("/whoami", whoami)
	client := serveInMemory(t, s.Handler())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, client) })
		// The /items route of the middleware itself answers the same.
		if tc.method == "" && tc.want.status != fasthttp.StatusOK {
			items := tc
			items.name += " on /items"
			t.Run(items.name, func(t *testing.T) { items.runPath(t, client, "/items") })
		}
	}
}

func (tc ambiguityCase) run(t *testing.T, client *fasthttp.Client) { tc.runPath(t, client, "/whoami") }

func (tc ambiguityCase) runPath(t *testing.T, client *fasthttp.Client, path string) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	method := tc.method
	if method == "" {
		method = fasthttp.MethodGet
	}
	req.Header.SetMethod(method)
	uri := "http://tokengate.test" + path
	if tc.query != "" {
		uri += "?" + tc.query
	}
	req.SetRequestURI(uri)
	for _, v := range tc.authorization {
		req.Header.Add(fasthttp.HeaderAuthorization, v)
	}
	if tc.form != "" {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(tc.form)
	}
	if err := client.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	tc.want.check(t, resp)
}
