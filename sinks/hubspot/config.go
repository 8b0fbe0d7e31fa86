package hubspot

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/ratelimit"
)

// Delete policies.
const (
	OnDeleteArchive = "archive" // archive the record (HubSpot's recycle bin)
	OnDeleteClear   = "clear"   // set every mapped property but id_property to ""
	OnDeleteIgnore  = "ignore"  // leave the record as it is
)

// Config is the config of the "hubspot" system type.
type Config struct {
	// BaseURL is the API's origin. Default https://api.hubapi.com.
	BaseURL string `yaml:"base_url"`
	// ObjectsPath is the path of the objects API below BaseURL. Default
	// /crm/v3/objects; date-versioned paths such as /crm/objects/2026-03
	// have the same shape.
	ObjectsPath string `yaml:"objects_path"`
	// Token is the private app's access token. It is a secret: never
	// logged, never part of an error or of the limiter's account name.
	Token string `yaml:"token"`
	// Object is the object type written when a record names none:
	// contacts, companies, deals or a custom object's type id (2-1234567).
	Object string `yaml:"object"`
	// IDProperty, when set, names a unique property (email for contacts,
	// or a custom property with unique values). Records without an
	// external id that carry it are upserted by it, which makes creating
	// them idempotent.
	IDProperty string `yaml:"id_property"`
	// OnDelete is archive (default), clear or ignore.
	OnDelete string `yaml:"on_delete"`
	// Rate is the account's request budget. Default 100 per 10s; private
	// apps on paid tiers may have 190 per 10s. The writer holds each
	// window 250 ms longer to absorb latency jitter.
	Rate ratelimit.Rate `yaml:"rate"`
	// Timeout bounds each request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Account names the rate budget: systems with one account share one
	// limiter, as HubSpot counts per account. Default: derived from
	// BaseURL and a hash of Token.
	Account string `yaml:"account"`
}

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config {
	return &Config{
		BaseURL:     "https://api.hubapi.com",
		ObjectsPath: "/crm/v3/objects",
		OnDelete:    OnDeleteArchive,
		Rate:        ratelimit.Rate{Requests: 100, Per: 10 * time.Second},
		Timeout:     10 * time.Second,
	}
}

// objectType matches HubSpot object type names and ids (contacts, p_cars,
// 2-1234567).
var objectType = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, config.FieldError{Path: "base_url", Msg: fmt.Sprintf("%q: want an http:// or https:// URL with a host", c.BaseURL)})
	}
	if c.ObjectsPath != "" && !strings.HasPrefix(c.ObjectsPath, "/") {
		errs = append(errs, config.FieldError{Path: "objects_path", Msg: "must start with /"})
	}
	if c.Token == "" {
		errs = append(errs, config.FieldError{Path: "token", Msg: "required: the private app's access token (use ${HUBSPOT_TOKEN})"})
	}
	if c.Object != "" && !objectType.MatchString(c.Object) {
		errs = append(errs, config.FieldError{Path: "object", Msg: fmt.Sprintf("%q is not an object type (contacts, companies, deals, 2-1234567)", c.Object)})
	}
	if c.IDProperty != "" && !objectType.MatchString(c.IDProperty) {
		errs = append(errs, config.FieldError{Path: "id_property", Msg: fmt.Sprintf("%q is not a property name", c.IDProperty)})
	}
	switch c.OnDelete {
	case OnDeleteArchive, OnDeleteClear, OnDeleteIgnore:
	default:
		errs = append(errs, config.FieldError{Path: "on_delete", Msg: fmt.Sprintf("%q: want archive, clear or ignore", c.OnDelete)})
	}
	if c.Rate.Requests <= 0 {
		errs = append(errs, config.FieldError{Path: "rate.requests", Msg: "must be positive"})
	}
	if c.Rate.Per <= 0 {
		errs = append(errs, config.FieldError{Path: "rate.per", Msg: "must be positive"})
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.FieldError{Path: "timeout", Msg: "must be positive"})
	}
	return errors.Join(errs...)
}

// account is the limiter key: the configured account, or the API origin
// with a digest of the token, so that two systems with one token share a
// budget and the token itself appears nowhere.
func (c *Config) account() string {
	if c.Account != "" {
		return "hubspot:" + c.Account
	}
	sum := sha256.Sum256([]byte(c.Token))
	return "hubspot:" + strings.TrimRight(c.BaseURL, "/") + "#" + hex.EncodeToString(sum[:8])
}

// objectsURL is the URL of the objects API, without a trailing slash.
func (c *Config) objectsURL() string {
	p := c.ObjectsPath
	if p == "" {
		p = "/crm/v3/objects"
	}
	return strings.TrimRight(c.BaseURL, "/") + "/" + strings.Trim(p, "/")
}
