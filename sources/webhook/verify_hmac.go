package webhook

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"
)

// HMACConfig configures an HMACVerifier for systems that sign with a plain
// HMAC in one header.
type HMACConfig struct {
	// Algorithm is sha256 (default), sha1 or sha512.
	Algorithm string `yaml:"algorithm"`
	// Encoding of the signature: hex (default) or base64.
	Encoding string `yaml:"encoding"`
	// Header carries the signature, e.g. X-Hub-Signature-256.
	Header string `yaml:"header"`
	// Prefix precedes the encoded signature in Header, e.g. "sha256=".
	Prefix string `yaml:"prefix"`
	// TimestampHeader, when set, names a header with a Unix time in seconds;
	// the signed bytes are then "<timestamp>.<body>" and the timestamp must
	// lie within Window. Otherwise the body alone is signed.
	TimestampHeader string `yaml:"timestamp_header"`
	// DeliveryIDHeader, when set, names a header whose value is stable
	// across retries of one delivery.
	DeliveryIDHeader string `yaml:"delivery_id_header"`
	// Secrets are the shared secrets; any one may sign.
	Secrets []string `yaml:"secrets"`
	// Window bounds the timestamp's age and future skew; 0 means
	// DefaultWindow.
	Window time.Duration `yaml:"window"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *HMACConfig) Validate() error {
	var errs []error
	if _, err := hmacHash(c.Algorithm); err != nil {
		errs = append(errs, fmt.Errorf("algorithm: %w", err))
	}
	switch c.Encoding {
	case "", "hex", "base64":
	default:
		errs = append(errs, fmt.Errorf("encoding: %q is not hex or base64", c.Encoding))
	}
	if c.Header == "" {
		errs = append(errs, errors.New("header: required"))
	}
	errs = append(errs, validateSecrets(c.Secrets), validateWindow(c.Window))
	return errors.Join(errs...)
}

func hmacHash(alg string) (func() hash.Hash, error) {
	switch alg {
	case "", "sha256":
		return sha256.New, nil
	case "sha1":
		return sha1.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%q is not sha256, sha1 or sha512", alg)
}

// HMACVerifier checks a configurable HMAC signature header.
type HMACVerifier struct {
	newHash  func() hash.Hash
	b64      bool
	header   string
	prefix   string
	tsHeader string
	idHeader string
	keys     [][]byte
	window   time.Duration
}

// NewHMACVerifier validates cfg and returns its verifier.
func NewHMACVerifier(cfg HMACConfig) (*HMACVerifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h, _ := hmacHash(cfg.Algorithm)
	v := &HMACVerifier{
		newHash: h,
		b64:     cfg.Encoding == "base64",
		header:  http.CanonicalHeaderKey(cfg.Header),
		prefix:  cfg.Prefix,
		keys:    byteSecrets(cfg.Secrets),
		window:  windowOrDefault(cfg.Window),
	}
	if cfg.TimestampHeader != "" {
		v.tsHeader = http.CanonicalHeaderKey(cfg.TimestampHeader)
	}
	if cfg.DeliveryIDHeader != "" {
		v.idHeader = http.CanonicalHeaderKey(cfg.DeliveryIDHeader)
	}
	return v, nil
}

// Verify implements Verifier.
func (v *HMACVerifier) Verify(r *Request, now time.Time) error {
	sig := r.Header.Get(v.header)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, v.header)
	}
	enc, ok := strings.CutPrefix(sig, v.prefix)
	if !ok {
		return fmt.Errorf("%w: %s lacks the configured prefix", ErrBadSignature, v.header)
	}
	var want []byte
	var err error
	if v.b64 {
		want, err = base64.StdEncoding.DecodeString(enc)
	} else {
		want, err = hex.DecodeString(enc)
	}
	if err != nil {
		return fmt.Errorf("%w: %s is not valid %s", ErrBadSignature, v.header, v.encoding())
	}
	parts := [][]byte{r.Body}
	if v.tsHeader != "" {
		ts := r.Header.Get(v.tsHeader)
		if ts == "" {
			return fmt.Errorf("%w: no %s header", ErrMissingSignature, v.tsHeader)
		}
		signed, err := parseUnix(ts, false)
		if err != nil {
			return fmt.Errorf("%s: %w", v.tsHeader, err)
		}
		if err := checkWindow(signed, now, v.window); err != nil {
			return err
		}
		parts = [][]byte{[]byte(ts), {'.'}, r.Body}
	}
	if !macAny(v.newHash, v.keys, [][]byte{want}, parts...) {
		return fmt.Errorf("%w: %s matches no configured secret", ErrBadSignature, v.header)
	}
	return nil
}

func (v *HMACVerifier) encoding() string {
	if v.b64 {
		return "base64"
	}
	return "hex"
}

// DeliveryID returns the configured delivery id header, or "" when none is
// configured.
func (v *HMACVerifier) DeliveryID(r *Request) string {
	if v.idHeader == "" {
		return ""
	}
	return r.Header.Get(v.idHeader)
}
