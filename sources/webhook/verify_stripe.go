package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// HeaderStripeSignature is the default header of a StripeVerifier.
const HeaderStripeSignature = "Stripe-Signature"

// StripeConfig configures a StripeVerifier.
type StripeConfig struct {
	// Header carries "t=<unix>,v1=<hex>[,v1=<hex>...]"; default
	// Stripe-Signature.
	Header string `yaml:"header"`
	// Secrets are endpoint signing secrets (whsec_... for Stripe, used
	// verbatim as HMAC keys).
	Secrets []string `yaml:"secrets"`
	// Window bounds the timestamp's age and future skew; 0 means
	// DefaultWindow.
	Window time.Duration `yaml:"window"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *StripeConfig) Validate() error {
	return errors.Join(validateSecrets(c.Secrets), validateWindow(c.Window))
}

// StripeVerifier checks Stripe-style signatures: hex HMAC-SHA256 over
// "<t>.<body>", with several v1 values allowed during rotation.
type StripeVerifier struct {
	header string
	keys   [][]byte
	window time.Duration
}

// NewStripeVerifier validates cfg and returns its verifier.
func NewStripeVerifier(cfg StripeConfig) (*StripeVerifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := cfg.Header
	if h == "" {
		h = HeaderStripeSignature
	}
	return &StripeVerifier{header: http.CanonicalHeaderKey(h), keys: byteSecrets(cfg.Secrets), window: windowOrDefault(cfg.Window)}, nil
}

// Verify implements Verifier.
func (v *StripeVerifier) Verify(r *Request, now time.Time) error {
	hv := r.Header.Get(v.header)
	if hv == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, v.header)
	}
	var ts string
	var wants [][]byte
	for part := range strings.SplitSeq(hv, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = val
		case "v1":
			if len(wants) == maxSignatures {
				continue
			}
			if w, err := hex.DecodeString(val); err == nil {
				wants = append(wants, w)
			}
		}
	}
	if ts == "" {
		return fmt.Errorf("%w: %s has no t= timestamp", ErrBadSignature, v.header)
	}
	signed, err := parseUnix(ts, false)
	if err != nil {
		return fmt.Errorf("%s: %w", v.header, err)
	}
	if err := checkWindow(signed, now, v.window); err != nil {
		return err
	}
	if len(wants) == 0 {
		return fmt.Errorf("%w: %s has no v1 signature", ErrBadSignature, v.header)
	}
	if !macAny(sha256.New, v.keys, wants, []byte(ts), []byte{'.'}, r.Body) {
		return fmt.Errorf("%w: no v1 signature in %s matches a configured secret", ErrBadSignature, v.header)
	}
	return nil
}
