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
	HeaderShopifyEventID   = "X-Shopify-Event-Id"
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

// DeliveryID returns the id Shopify's guide says to deduplicate on
// ("Ignore duplicate webhooks", shopify.dev/docs/apps/build/webhooks/ignore-duplicates):
// X-Shopify-Event-Id, the same on every delivery of one event (retries,
// duplicates, one per subscription to the topic), qualified by the topic;
// X-Shopify-Webhook-Id, one per delivery, when the header is absent.
func (v *ShopifyVerifier) DeliveryID(r *Request) string {
	return shopifyDeliveryID(r)
}

func shopifyDeliveryID(r *Request) string {
	if ev := r.Header.Get(HeaderShopifyEventID); ev != "" {
		return "event/" + ev + "/" + r.Header.Get(HeaderShopifyTopic)
	}
	return r.Header.Get(HeaderShopifyWebhookID)
}
