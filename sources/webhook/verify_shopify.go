package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// Shopify webhook headers.
const (
	HeaderShopifyHmac      = "X-Shopify-Hmac-SHA256"
	HeaderShopifyWebhookID = "X-Shopify-Webhook-Id"
	HeaderShopifyTopic     = "X-Shopify-Topic"
	HeaderShopifyTriggered = "X-Shopify-Triggered-At"
)

// ShopifyConfig configures a ShopifyVerifier.
type ShopifyConfig struct {
	// Secrets are the app's client secrets (or a store's webhook signing
	// keys). After a rotation the old secret signs for up to an hour, so
	// keep both until then.
	Secrets []string `yaml:"secrets"`
}

// Validate reports every problem, each prefixed with its field path.
func (c *ShopifyConfig) Validate() error { return validateSecrets(c.Secrets) }

// ShopifyVerifier checks X-Shopify-Hmac-SHA256, the base64 HMAC-SHA256 of
// the raw body. Shopify signs no timestamp: replays are caught by
// deduplicating on DeliveryID.
type ShopifyVerifier struct {
	keys [][]byte
}

// NewShopifyVerifier validates cfg and returns its verifier.
func NewShopifyVerifier(cfg ShopifyConfig) (*ShopifyVerifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &ShopifyVerifier{keys: byteSecrets(cfg.Secrets)}, nil
}

// Verify implements Verifier.
func (v *ShopifyVerifier) Verify(r *Request, _ time.Time) error {
	sig := r.Header.Get(HeaderShopifyHmac)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, HeaderShopifyHmac)
	}
	want, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrBadSignature, HeaderShopifyHmac)
	}
	if !macAny(sha256.New, v.keys, [][]byte{want}, r.Body) {
		return fmt.Errorf("%w: %s matches no configured secret", ErrBadSignature, HeaderShopifyHmac)
	}
	return nil
}

// DeliveryID returns X-Shopify-Webhook-Id, which stays the same across
// Shopify's retries of one delivery.
func (v *ShopifyVerifier) DeliveryID(r *Request) string {
	return r.Header.Get(HeaderShopifyWebhookID)
}
