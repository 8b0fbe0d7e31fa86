package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HubSpot signature headers.
const (
	HeaderHubSpotSignatureV3 = "X-HubSpot-Signature-v3"
	HeaderHubSpotTimestamp   = "X-HubSpot-Request-Timestamp"
	HeaderHubSpotSignature   = "X-HubSpot-Signature"
)

// HubSpotConfig configures a HubSpotVerifier.
type HubSpotConfig struct {
	// Version is "v3" (the default) or "v2". v2 signs no timestamp, so it
	// cannot reject replays.
	Version string `yaml:"version"`
	// Secrets are the app's client secrets; any one may sign.
	Secrets []string `yaml:"secrets"`
	// Window bounds the age and future skew of a v3 timestamp; 0 means
	// DefaultWindow.
	Window time.Duration `yaml:"window"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *HubSpotConfig) Validate() error {
	var errs []error
	switch c.Version {
	case "", "v3", "v2":
	default:
		errs = append(errs, fmt.Errorf("version: %q is not v2 or v3", c.Version))
	}
	errs = append(errs, validateSecrets(c.Secrets), validateWindow(c.Window))
	return errors.Join(errs...)
}

// HubSpotVerifier checks HubSpot's v3 signature (HMAC-SHA256 over method,
// URI, body and timestamp, base64) or its v2 signature (hex SHA-256 of
// secret, method, URI and body).
type HubSpotVerifier struct {
	v2     bool
	keys   [][]byte
	window time.Duration
}

// NewHubSpotVerifier validates cfg and returns its verifier.
func NewHubSpotVerifier(cfg HubSpotConfig) (*HubSpotVerifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &HubSpotVerifier{v2: cfg.Version == "v2", keys: byteSecrets(cfg.Secrets), window: windowOrDefault(cfg.Window)}, nil
}

// Verify implements Verifier. r.URL must be the URL as HubSpot called it.
func (v *HubSpotVerifier) Verify(r *Request, now time.Time) error {
	if v.v2 {
		return v.verifyV2(r)
	}
	sig := r.Header.Get(HeaderHubSpotSignatureV3)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, HeaderHubSpotSignatureV3)
	}
	ts := r.Header.Get(HeaderHubSpotTimestamp)
	if ts == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, HeaderHubSpotTimestamp)
	}
	signed, err := parseUnix(ts, true)
	if err != nil {
		return fmt.Errorf("%s: %w", HeaderHubSpotTimestamp, err)
	}
	if err := checkWindow(signed, now, v.window); err != nil {
		return err
	}
	want, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrBadSignature, HeaderHubSpotSignatureV3)
	}
	if !macAny(sha256.New, v.keys, [][]byte{want},
		[]byte(r.Method), []byte(hubSpotURI(r.URL)), r.Body, []byte(ts)) {
		return fmt.Errorf("%w: %s matches no configured secret", ErrBadSignature, HeaderHubSpotSignatureV3)
	}
	return nil
}

func (v *HubSpotVerifier) verifyV2(r *Request) error {
	sig := r.Header.Get(HeaderHubSpotSignature)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, HeaderHubSpotSignature)
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrBadSignature, HeaderHubSpotSignature)
	}
	for _, k := range v.keys {
		h := sha256.New()
		h.Write(k)
		h.Write([]byte(r.Method))
		h.Write([]byte(r.URL))
		h.Write(r.Body)
		var sum [sha256.Size]byte
		if subtle.ConstantTimeCompare(h.Sum(sum[:0]), want) == 1 {
			return nil
		}
	}
	return fmt.Errorf("%w: %s matches no configured secret", ErrBadSignature, HeaderHubSpotSignature)
}

// hubSpotDecoded lists the escapes HubSpot decodes in the URI before signing
// a v3 request.
var hubSpotDecoded = strings.NewReplacer(
	"%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$",
	"%27", "'", "%28", "(", "%29", ")", "%2A", "*", "%2C", ",", "%3B", ";",
	"%3a", ":", "%2f", "/", "%3f", "?", "%2a", "*", "%2c", ",", "%3b", ";",
)

func hubSpotURI(u string) string {
	if strings.IndexByte(u, '%') < 0 {
		return u
	}
	return hubSpotDecoded.Replace(u)
}
