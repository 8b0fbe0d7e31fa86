package webhook

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"time"
)

// DefaultWindow is how far a signed timestamp may lie in the past or the
// future before a delivery is rejected as a replay.
const DefaultWindow = 5 * time.Minute

// Verification failures. Verify wraps one of them with detail that never
// contains a secret or a computed signature.
var (
	ErrMissingSignature = errors.New("missing signature")
	ErrBadSignature     = errors.New("bad signature")
	ErrExpired          = errors.New("signature timestamp outside the replay window")
)

// Request is one delivery as received: what a Verifier and a Parser need,
// independent of net/http.
type Request struct {
	Method string
	// URL is the full URL as the sender called it (scheme, host, path and
	// query), which HubSpot signs.
	URL    string
	Header http.Header
	Body   []byte
}

// Verifier checks that a delivery was signed by the system. It returns nil,
// or an error wrapping ErrMissingSignature, ErrBadSignature or ErrExpired
// that says what is wrong without revealing secrets. Any one of the
// configured secrets matching is enough, so secrets can be rotated. now is
// the receiver's clock. Verify is safe for concurrent use.
type Verifier interface {
	Verify(r *Request, now time.Time) error
}

// checkWindow rejects a signed time more than window before or after now.
func checkWindow(signed, now time.Time, window time.Duration) error {
	d := now.Sub(signed)
	switch {
	case d > window:
		return fmt.Errorf("%w: signed %s ago, window %s", ErrExpired, d.Truncate(time.Second), window)
	case -d > window:
		return fmt.Errorf("%w: signed %s in the future, window %s", ErrExpired, (-d).Truncate(time.Second), window)
	}
	return nil
}

// parseUnix reads a decimal timestamp in seconds or, when ms, milliseconds.
func parseUnix(s string, ms bool) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%w: timestamp is not a non-negative integer", ErrBadSignature)
	}
	if ms {
		return time.UnixMilli(n), nil
	}
	if n > 1<<40 {
		return time.Time{}, fmt.Errorf("%w: timestamp out of range", ErrBadSignature)
	}
	return time.Unix(n, 0), nil
}

// macAny reports whether any want equals the MAC of parts under any key.
// Every comparison is constant-time.
func macAny(newHash func() hash.Hash, keys [][]byte, wants [][]byte, parts ...[]byte) bool {
	var sum [64]byte
	for _, k := range keys {
		m := hmac.New(newHash, k)
		for _, p := range parts {
			m.Write(p)
		}
		got := m.Sum(sum[:0])
		for _, w := range wants {
			if hmac.Equal(got, w) {
				return true
			}
		}
	}
	return false
}

// validateSecrets reports empty or missing secrets, each with its path.
func validateSecrets(secrets []string) error {
	if len(secrets) == 0 {
		return errors.New("secrets: at least one secret is required")
	}
	var errs []error
	for i, s := range secrets {
		if s == "" {
			errs = append(errs, fmt.Errorf("secrets[%d]: empty", i))
		}
	}
	return errors.Join(errs...)
}

func validateWindow(w time.Duration) error {
	if w < 0 {
		return fmt.Errorf("window: %s is negative", w)
	}
	return nil
}

func windowOrDefault(w time.Duration) time.Duration {
	if w == 0 {
		return DefaultWindow
	}
	return w
}

func byteSecrets(secrets []string) [][]byte {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return keys
}
