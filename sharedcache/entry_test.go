package sharedcache

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

func TestEntryEncoding(t *testing.T) {
	s := newSigner(testKey)
	now := time.Unix(1_800_000_000, 123456789)
	d := digestOf("token")
	for _, tc := range []struct {
		name string
		e    authcache.L2Entry
	}{
		{"positive", authcache.L2Entry{Principal: fullPrincipal(now), ValidatedAt: now, Deadline: now.Add(time.Minute)}},
		{"zero times", authcache.L2Entry{Principal: &auth.Principal{Subject: "s"}}},
		{"far future exp", authcache.L2Entry{Principal: &auth.Principal{ExpiresAt: time.Unix(math.MaxInt64/2, 0)}, Deadline: now}},
		{"before 1970", authcache.L2Entry{Principal: &auth.Principal{IssuedAt: time.Unix(-1, 5)}, Deadline: now}},
		{"negative", authcache.L2Entry{Reason: auth.ReasonExpired, ValidatedAt: now, Deadline: now.Add(time.Second)}},
		{"longest lists", authcache.L2Entry{Principal: &auth.Principal{Scopes: make([]string, MaxListLen), Audience: make([]string, MaxListLen)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := s.encodeEntry(nil, &d, &tc.e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.decodeEntry(&d, v)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			sameEntry(t, got, tc.e)
			if !got.Deadline.Equal(tc.e.Deadline) || got.Deadline.IsZero() != tc.e.Deadline.IsZero() {
				t.Errorf("Deadline = %v, want %v", got.Deadline, tc.e.Deadline)
			}
			if p := got.Principal; p != nil && (p.IssuedAt.IsZero() != tc.e.Principal.IssuedAt.IsZero() || p.ExpiresAt.IsZero() != tc.e.Principal.ExpiresAt.IsZero()) {
				t.Errorf("zero times not kept: %+v", p)
			}
			// Every single-bit change is caught, and so is another digest.
			for i := range v {
				w := bytes.Clone(v)
				w[i] ^= 0x80
				if _, err := s.decodeEntry(&d, w); !errors.Is(err, errMAC) {
					t.Fatalf("byte %d flipped: err = %v, want errMAC", i, err)
				}
			}
			other := digestOf("other")
			if _, err := s.decodeEntry(&other, v); !errors.Is(err, errMAC) {
				t.Fatalf("under another digest: err = %v, want errMAC", err)
			}
		})
	}
}

func TestDecodeRejectsMalformedBodies(t *testing.T) {
	s := newSigner(testKey)
	d := digestOf("token")
	sign := func(body []byte) []byte { return s.sum(bytes.Clone(body), domainEntry, &d, body) }
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"newer version", []byte{entryVersion + 1, kindNegative}, errBadVersion},
		{"unknown kind", []byte{entryVersion, 3, 0, 0, 0, 0}, errMalformed},
		{"truncated time", []byte{entryVersion, kindNegative, 0x80}, errMalformed},
		{"nanoseconds out of range", append([]byte{entryVersion, kindNegative, 2}, 0x80, 0x94, 0xeb, 0xdc, 0x03), errMalformed},
		{"string longer than the rest", []byte{entryVersion, kindNegative, 0, 0, 0, 0, 5, 'a'}, errMalformed},
		{"empty reason", []byte{entryVersion, kindNegative, 0, 0, 0, 0, 0}, errMalformed},
		{"trailing bytes", []byte{entryVersion, kindNegative, 0, 0, 0, 0, 1, 'r', 0}, errMalformed},
		{"list too long", append([]byte{entryVersion, kindPositive, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x02}, make([]byte, 300)...), errMalformed},
		{"varint overflow", []byte{entryVersion, kindNegative, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.decodeEntry(&d, sign(tc.body)); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRevocationMessage(t *testing.T) {
	s := newSigner(testKey)
	d := digestOf("token")
	msg := s.encodeRevocation(&d)
	if len(msg) != revocationLen {
		t.Fatalf("len = %d, want %d", len(msg), revocationLen)
	}
	if got, ok := s.decodeRevocation(string(msg)); !ok || got != d {
		t.Fatalf("decode = %x, %v", got, ok)
	}
	for i := range msg {
		w := bytes.Clone(msg)
		w[i] ^= 1
		if _, ok := s.decodeRevocation(string(w)); ok {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	// An entry's MAC never passes as a revocation's, nor the reverse.
	e := authcache.L2Entry{Reason: auth.ReasonMalformed}
	v, _ := s.encodeEntry(nil, &d, &e)
	if _, ok := s.decodeRevocation(string(v)); ok {
		t.Fatal("an entry passed as a revocation")
	}
	if _, err := s.decodeEntry(&d, msg); err == nil {
		t.Fatal("a revocation passed as an entry")
	}
}
