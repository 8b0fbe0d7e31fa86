package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderStandardID        = "Webhook-Id"
	HeaderStandardTimestamp = "Webhook-Timestamp"
	HeaderStandardSignature = "Webhook-Signature"
)

// maxSignatures bounds how many signatures of one header are considered.
const maxSignatures = 16

// StandardConfig configures a StandardVerifier.
type StandardConfig struct {
	// Secrets are signing secrets of the form whsec_<base64 key>.
	Secrets []string `yaml:"secrets"`
	// Window bounds the timestamp's age and future skew; 0 means
	// DefaultWindow.
	Window time.Duration `yaml:"window"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *StandardConfig) Validate() error {
	errs := []error{validateSecrets(c.Secrets), validateWindow(c.Window)}
	for i, s := range c.Secrets {
		if s == "" {
			continue
		}
		if _, err := standardKey(s); err != nil {
			errs = append(errs, fmt.Errorf("secrets[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func standardKey(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New("not of the form whsec_<base64 key>")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) == 0 {
		return nil, errors.New("the part after whsec_ is not base64")
	}
	return k, nil
}

// StandardVerifier checks Standard Webhooks 1.0 symmetric signatures (v1:
// base64 HMAC-SHA256 over "<id>.<timestamp>.<body>"), as sent by Svix,
// Zapier, Supabase and others. Asymmetric v1a signatures are ignored.
type StandardVerifier struct {
	keys   [][]byte
	window time.Duration
}

// NewStandardVerifier validates cfg and returns its verifier.
func NewStandardVerifier(cfg StandardConfig) (*StandardVerifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &StandardVerifier{window: windowOrDefault(cfg.Window)}
	for _, s := range cfg.Secrets {
		k, _ := standardKey(s)
		v.keys = append(v.keys, k)
	}
	return v, nil
}

// Verify implements Verifier.
func (v *StandardVerifier) Verify(r *Request, now time.Time) error {
	id := r.Header.Get(HeaderStandardID)
	ts := r.Header.Get(HeaderStandardTimestamp)
	sigs := r.Header.Get(HeaderStandardSignature)
	for _, h := range [...]struct{ name, val string }{
		{HeaderStandardID, id}, {HeaderStandardTimestamp, ts}, {HeaderStandardSignature, sigs},
	} {
		if h.val == "" {
			return fmt.Errorf("%w: no %s header", ErrMissingSignature, h.name)
		}
	}
	signed, err := parseUnix(ts, false)
	if err != nil {
		return fmt.Errorf("%s: %w", HeaderStandardTimestamp, err)
	}
	if err := checkWindow(signed, now, v.window); err != nil {
		return err
	}
	var wants [][]byte
	for f := range strings.FieldsSeq(sigs) {
		b64, ok := strings.CutPrefix(f, "v1,")
		if !ok {
			continue
		}
		if w, err := base64.StdEncoding.DecodeString(b64); err == nil {
			wants = append(wants, w)
		}
		if len(wants) == maxSignatures {
			break
		}
	}
	if len(wants) == 0 {
		return fmt.Errorf("%w: %s has no v1 signature", ErrBadSignature, HeaderStandardSignature)
	}
	if !macAny(sha256.New, v.keys, wants, []byte(id), []byte{'.'}, []byte(ts), []byte{'.'}, r.Body) {
		return fmt.Errorf("%w: no v1 signature in %s matches a configured secret", ErrBadSignature, HeaderStandardSignature)
	}
	return nil
}

// DeliveryID returns webhook-id, which stays the same across retries.
func (v *StandardVerifier) DeliveryID(r *Request) string {
	return r.Header.Get(HeaderStandardID)
}
