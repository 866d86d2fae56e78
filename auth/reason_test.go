package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// reasonSentinels pairs every Reason but ReasonInvalid with its sentinel.
var reasonSentinels = []struct {
	reason   Reason
	sentinel error
}{
	{ReasonEmpty, ErrEmptyToken},
	{ReasonTooLarge, ErrTokenTooLarge},
	{ReasonInvalidCharacters, ErrInvalidCharacters},
	{ReasonMalformed, ErrMalformed},
	{ReasonEncrypted, ErrEncrypted},
	{ReasonAlgorithm, ErrAlgorithm},
	{ReasonEmbeddedKey, ErrEmbeddedKey},
	{ReasonKeyURL, ErrKeyURL},
	{ReasonCrit, ErrCrit},
	{ReasonTokenType, ErrTokenType},
	{ReasonUnknownKey, ErrUnknownKey},
	{ReasonKeyAlgorithm, ErrKeyAlgorithm},
	{ReasonNoKeyID, ErrNoKeyID},
	{ReasonSignature, ErrSignature},
	{ReasonClaims, ErrClaims},
	{ReasonIssuer, ErrIssuer},
	{ReasonAudience, ErrAudience},
	{ReasonAudienceMissing, ErrAudienceMissing},
	{ReasonExpiryMissing, ErrExpiryMissing},
	{ReasonExpired, ErrExpired},
	{ReasonNotYetValid, ErrNotYetValid},
	{ReasonIssuedInFuture, ErrIssuedInFuture},
	{ReasonClientNotAllowed, ErrClientNotAllowed},
	{ReasonClientConflict, ErrClientConflict},
	{ReasonInactive, ErrInactive},
}

// TestReasonNames: every reason has its own snake_case label and its own
// description, made only of the characters RFC 6750 allows in an
// error_description; values beyond the set read as unknown.
func TestReasonNames(t *testing.T) {
	labels, descriptions := map[string]Reason{}, map[string]Reason{}
	for r := range NumReasons {
		label, desc := r.String(), r.Description()
		if label == "" || label == "unknown" {
			t.Errorf("Reason(%d) has label %q", r, label)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; (c < 'a' || c > 'z') && c != '_' {
				t.Errorf("label %q is not snake_case", label)
				break
			}
		}
		if desc == "" {
			t.Errorf("%v has no description", r)
		}
		for i := 0; i < len(desc); i++ {
			// RFC 6750 section 3: %x20-21 / %x23-5B / %x5D-7E.
			if c := desc[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				t.Errorf("description %q has byte %#x, not allowed by RFC 6750", desc, c)
				break
			}
		}
		if prev, dup := labels[label]; dup {
			t.Errorf("%d and %d share the label %q", prev, r, label)
		}
		if prev, dup := descriptions[desc]; dup {
			t.Errorf("%d and %d share the description %q", prev, r, desc)
		}
		labels[label], descriptions[desc] = r, r
	}
	for _, r := range []Reason{NumReasons, NumReasons + 1, 255} {
		if r.String() != "unknown" || r.Description() != "invalid token" {
			t.Errorf("Reason(%d) = %q, %q; want unknown, invalid token", r, r.String(), r.Description())
		}
	}
}

// TestReasonSentinels: each reason but ReasonInvalid has a sentinel; a
// *TokenError matches its own reason's sentinel and no other, and every
// sentinel matches ErrInvalidToken and not ErrUnavailable.
func TestReasonSentinels(t *testing.T) {
	if got, want := len(reasonSentinels), int(NumReasons)-1; got != want {
		t.Fatalf("%d sentinels in the table, want %d: a reason was added without its sentinel", got, want)
	}
	for i, rs := range reasonSentinels {
		if rs.reason != Reason(i+1) {
			t.Fatalf("table row %d is %v, want Reason(%d)", i, rs.reason, i+1)
		}
		t.Run(rs.reason.String(), func(t *testing.T) {
			if !errors.Is(rs.sentinel, ErrInvalidToken) || errors.Is(rs.sentinel, ErrUnavailable) {
				t.Errorf("sentinel %v: Is(ErrInvalidToken) false or Is(ErrUnavailable) true", rs.sentinel)
			}
			if want := "auth: invalid token: " + rs.reason.Description(); rs.sentinel.Error() != want {
				t.Errorf("sentinel text %q, want %q", rs.sentinel.Error(), want)
			}
			te := &TokenError{Reason: rs.reason, Err: errors.New("cause")}
			for _, other := range reasonSentinels {
				if got, want := errors.Is(te, other.sentinel), other.reason == rs.reason; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", te, other.sentinel, got, want)
				}
			}
			if !errors.Is(te, ErrInvalidToken) {
				t.Errorf("%v does not match ErrInvalidToken", te)
			}
		})
	}
}

func TestReasonOf(t *testing.T) {
	expired := Invalid(ReasonExpired)
	for _, tc := range []struct {
		name string
		err  error
		want Reason
		ok   bool
	}{
		{"nil", nil, ReasonInvalid, false},
		{"plain error", errors.New("x"), ReasonInvalid, false},
		{"unavailable", &UnavailableError{Reason: "down", Err: errors.New("x")}, ReasonInvalid, false},
		{"ErrInvalidToken itself", ErrInvalidToken, ReasonInvalid, false},
		{"token error", expired, ReasonExpired, true},
		{"token error without a reason", &TokenError{}, ReasonInvalid, true},
		{"wrapped", fmt.Errorf("layer: %w", fmt.Errorf("inner: %w", expired)), ReasonExpired, true},
		{"joined", errors.Join(errors.New("x"), Invalid(ReasonInactive)), ReasonInactive, true},
		{"sentinel", ErrSignature, ReasonSignature, true},
		{"wrapped sentinel", fmt.Errorf("layer: %w", ErrAudience), ReasonAudience, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ReasonOf(tc.err)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ReasonOf = (%v, %v), want (%v, %v)", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// reasonCase is one fault that more than one validator can find: the
// claim edits that give a JWT the fault (nil: a good JWT) and the
// introspection answer that says the same.
type reasonCase struct {
	name       string
	want       error // the reason's sentinel
	edits      map[string]any
	remoteBody string
}

// run validates one token with Local (when the JWT is bad), Remote and a
// Hybrid of the two: every one that rejects it must match the same
// sentinel, with the same Reason and the same message.
func (tc reasonCase) run(t *testing.T) {
	f := newLocalFixture(t, nil)
	fake := newRemoteFake(t, remoteFakeBody(tc.remoteBody))
	remote := newRemoteTest(t, fake.url(), func(c *RemoteConfig) {
		c.Issuer, c.Audience, c.Now = f.iss.issuer, testAudience, f.clock.Now
		c.AllowedClients = []string{"client-a", "client-b"}
	})
	validators := []struct {
		name string
		v    Validator
	}{{"remote", remote}, {"hybrid", NewHybrid(f.local, remote)}}
	if tc.edits != nil {
		validators = append(validators, struct {
			name string
			v    Validator
		}{"local", f.local})
	}
	token := []byte(f.mint(t, f.keys.rsa, tc.edits))
	want, _ := ReasonOf(tc.want)
	var msgs []string
	for _, v := range validators {
		p, err := v.v.Validate(context.Background(), token)
		if p != nil || !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("%s: Validate = (%v, %v), want %v", v.name, p, err, tc.want)
		}
		if got, ok := ReasonOf(err); !ok || got != want {
			t.Errorf("%s: ReasonOf = (%v, %v), want %v", v.name, got, ok, want)
		}
		msgs = append(msgs, err.Error())
	}
	for i := range msgs {
		if msgs[i] != msgs[0] {
			t.Errorf("%s says %q, %s says %q", validators[i].name, msgs[i], validators[0].name, msgs[0])
		}
	}
}

// TestSameReasonWhicheverValidator: a token with a wrong issuer, a wrong
// audience, a past expiry or a foreign client is rejected for the same
// Reason by Local, Remote and Hybrid; an inactive one by Remote and Hybrid.
func TestSameReasonWhicheverValidator(t *testing.T) {
	past := t0.Add(-time.Hour).Unix()
	for _, tc := range []reasonCase{
		{"wrong issuer", ErrIssuer, map[string]any{"iss": "https://evil.example.com"}, `{"active":true,"iss":"https://evil.example.com"}`},
		{"wrong audience", ErrAudience, map[string]any{"aud": "api://other"}, `{"active":true,"aud":"api://other"}`},
		{"expired", ErrExpired, map[string]any{"exp": past}, `{"active":true,"exp":` + strconv.FormatInt(past, 10) + `}`},
		{"client not allowed", ErrClientNotAllowed, map[string]any{"cid": "client-z"}, `{"active":true,"client_id":"client-z"}`},
		{"inactive", ErrInactive, nil, `{"active":false}`},
	} {
		t.Run(tc.name, tc.run)
	}
}
