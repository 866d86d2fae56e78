package sharedcache

import (
	"bytes"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
)

// FuzzDecodeEntry feeds arbitrary values to the decoder twice: as read from
// Redis (they must fail authentication, never panic) and signed with the
// key (so the decoder proper is exercised). A value that decodes encodes
// back to an entry that decodes the same.
func FuzzDecodeEntry(f *testing.F) {
	s := newSigner(testKey)
	d := digestOf("token")
	now := time.Unix(1_800_000_000, 0)
	for _, e := range []authcache.L2Entry{
		{Principal: fullPrincipal(now), ValidatedAt: now, Deadline: now},
		{Reason: auth.ReasonExpired, Deadline: now},
	} {
		v, err := s.encodeEntry(nil, &d, &e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v[:len(v)-macSize])
	}
	f.Add([]byte{})
	f.Add([]byte{entryVersion, kindPositive, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := s.decodeEntry(&d, body); err == nil {
			t.Fatal("an unsigned value decoded")
		}
		signed := s.sum(bytes.Clone(body), domainEntry, &d, body)
		e, err := s.decodeEntry(&d, signed)
		if err != nil {
			return
		}
		v, err := s.encodeEntry(nil, &d, &e)
		if err != nil {
			if e.Principal == nil || e.Reason == auth.ReasonInvalid {
				t.Fatalf("a decoded entry does not encode: %v (%+v)", err, e)
			}
			return
		}
		again, err := s.decodeEntry(&d, v)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		sameEntry(t, again, e)
	})
}

// FuzzDecodeRevocation: any message either fails or names the digest it
// was signed for; none panics.
func FuzzDecodeRevocation(f *testing.F) {
	s := newSigner(testKey)
	d := digestOf("token")
	f.Add(string(s.encodeRevocation(&d)))
	f.Add("")
	f.Fuzz(func(t *testing.T, msg string) {
		got, ok := s.decodeRevocation(msg)
		if ok && string(s.encodeRevocation(&got)) != msg {
			t.Fatalf("accepted %x, which is not the signed message for %x", msg, got)
		}
	})
}
