package shopify

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
)

// Modes.
const (
	// ModeCompareAndSet sets the quantity through GraphQL
	// inventorySetQuantities only if Shopify still holds the record's
	// previous quantity, so a stale sync cannot overwrite a sale.
	ModeCompareAndSet = "compare_and_set"
	// ModeSet overwrites the quantity through REST inventory_levels/set.json.
	ModeSet = "set"
)

// Config is the config of the "shopify" system type: inventory levels of
// one shop.
type Config struct {
	// Shop is the shop's domain, my-shop.myshopify.com.
	Shop string `yaml:"shop"`
	// BaseURL overrides https://<shop> (a proxy, a test double).
	BaseURL string `yaml:"base_url"`
	// APIVersion is the Admin API version, YYYY-MM. Default 2026-04.
	APIVersion string `yaml:"api_version"`
	// AccessToken is the Admin API access token. It is a secret.
	AccessToken string `yaml:"access_token"`
	// Mode is compare_and_set (default) or set.
	Mode string `yaml:"mode"`
	// LocationID is the location every level is set at, unless
	// LocationField names a mapped field that holds it. Numeric ids and
	// gid://shopify/Location/... are both accepted.
	LocationID    string `yaml:"location_id"`
	LocationField string `yaml:"location_field"`
	// ItemField and AvailableField name the mapped fields that hold the
	// inventory item id and the quantity. Defaults inventory_item_id and
	// available.
	ItemField      string `yaml:"item_field"`
	AvailableField string `yaml:"available_field"`
	// CompareField names the mapped field that holds the quantity Shopify
	// is expected to have (the previous local value, mapped from the
	// event's before image). Default previous_available. When the record
	// lacks it, CompareColumn, if set, names a column of Event.Before to
	// read it from (this needs REPLICA IDENTITY FULL on the table).
	CompareField  string `yaml:"compare_field"`
	CompareColumn string `yaml:"compare_column"`
	// Reason is the inventory adjustment reason. Default correction.
	Reason string `yaml:"reason"`
	// OnDelete is ignore (default: a deleted row leaves Shopify alone) or
	// zero (set the quantity to 0).
	OnDelete string `yaml:"on_delete"`
	// Rate is the budget shared by every writer of the shop. Default 2
	// requests per second, the REST leak rate of a standard plan.
	Rate ratelimit.Rate `yaml:"rate"`
	// Timeout bounds one request. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns a config with its defaults set.
func DefaultConfig() *Config {
	return &Config{
		APIVersion:     "2026-04",
		Mode:           ModeCompareAndSet,
		ItemField:      "inventory_item_id",
		AvailableField: "available",
		CompareField:   "previous_available",
		Reason:         "correction",
		OnDelete:       "ignore",
		Rate:           ratelimit.Rate{Requests: 2, Per: time.Second},
		Timeout:        30 * time.Second,
	}
}

// Validate checks the config offline.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Shop == "" && c.BaseURL == "" {
		bad("shop", "required: the shop's domain (my-shop.myshopify.com)")
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			bad("base_url", "%q is not an http(s) URL", c.BaseURL)
		}
	}
	if t, err := time.Parse("2006-01", c.APIVersion); (err != nil || t.Format("2006-01") != c.APIVersion) && c.APIVersion != "unstable" {
		bad("api_version", "%q is not a version like 2026-04", c.APIVersion)
	}
	if c.AccessToken == "" {
		bad("access_token", "required: the Admin API access token")
	}
	if c.Mode != ModeCompareAndSet && c.Mode != ModeSet {
		bad("mode", "%q is not compare_and_set or set", c.Mode)
	}
	if (c.LocationID == "") == (c.LocationField == "") {
		bad("location_id", "set exactly one of location_id and location_field")
	}
	if c.ItemField == "" {
		bad("item_field", "required")
	}
	if c.AvailableField == "" {
		bad("available_field", "required")
	}
	if c.Mode == ModeCompareAndSet && c.CompareField == "" && c.CompareColumn == "" {
		bad("compare_field", "compare_and_set needs compare_field or compare_column")
	}
	if c.Reason == "" {
		bad("reason", "required")
	}
	if c.OnDelete != "ignore" && c.OnDelete != "zero" {
		bad("on_delete", "%q is not ignore or zero", c.OnDelete)
	}
	if err := c.Rate.Validate(); err != nil {
		bad("rate", "%v", err)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	return errors.Join(errs...)
}

// baseURL returns the shop's origin.
func (c *Config) baseURL() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	return "https://" + c.Shop
}
