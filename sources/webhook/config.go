package webhook

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/config"
)

// Verifiers and parsers a webhook section may name.
var (
	verifierNames = []string{"hubspot", "shopify", "standard", "stripe", "hmac"}
	parserNames   = []string{"hubspot", "shopify", "salesforce", "json"}
)

// Config is a system's webhook: section: how its deliveries are signed and
// what their bodies hold. One shape serves every vendor; keys a verifier
// or parser does not use are refused.
type Config struct {
	// Verify names the signature scheme: hubspot, shopify, standard
	// (Standard Webhooks), stripe (t=,v1=) or hmac (a generic header).
	Verify string `yaml:"verify"`
	// Secrets sign deliveries; any one of them may, so a secret can be
	// rotated. Secret adds one more.
	Secrets []string `yaml:"secrets"`
	Secret  string   `yaml:"secret"`
	// Window bounds a signed timestamp's age (default 5m).
	Window time.Duration `yaml:"window"`
	// Version is HubSpot's signature version: v3 (default) or v2.
	Version string `yaml:"version"`
	// Header names the signature header (hmac; stripe, default
	// Stripe-Signature); the other keys shape an hmac signature.
	Header           string `yaml:"header"`
	Prefix           string `yaml:"prefix"`
	Algorithm        string `yaml:"algorithm"`
	Encoding         string `yaml:"encoding"`
	TimestampHeader  string `yaml:"timestamp_header"`
	DeliveryIDHeader string `yaml:"delivery_id_header"`
	// Parse names the payload format: hubspot, shopify, salesforce (Change
	// Data Capture events) or json (JSON, mapped by the json: keys).
	Parse string      `yaml:"parse"`
	JSON  *JSONConfig `yaml:"json"`
	// AvroSchemas (parse: salesforce) maps an entity to the file holding
	// its change event's Avro schema, to decode Pub/Sub API bitmaps; see
	// SalesforceParserConfig.
	AvroSchemas map[string]string `yaml:"avro_schemas"`
	// MaxBody bounds a delivery's body, in bytes, instead of the intake's
	// limit. Default for shopify: 16 MiB, since a products/update of a
	// product with many variants exceeds 1 MiB and Shopify retries a
	// refused delivery until it deletes the subscription.
	MaxBody int64 `yaml:"max_body"`
	// OwnSources are the vendor's origin hints that mark a change cdcd
	// itself made: "INTEGRATION/<app id>" for HubSpot (changeSource/
	// sourceId), "client=<name>" for Salesforce (changeOrigin).
	OwnSources []string `yaml:"own_sources"`
}

// JSONConfig maps a JSON delivery; see JSONParserConfig.
type JSONConfig struct {
	Table          string            `yaml:"table"`
	Events         string            `yaml:"events"`
	ID             string            `yaml:"id"`
	Op             string            `yaml:"op"`
	Ops            map[string]string `yaml:"ops"`
	OccurredAt     string            `yaml:"occurred_at"`
	OccurredAtUnit string            `yaml:"occurred_at_unit"`
	DeliveryID     string            `yaml:"delivery_id"`
	Fields         []JSONField       `yaml:"fields"`
}

// ShopifyMaxBody is the default max_body of a shopify system's webhooks.
const ShopifyMaxBody = 16 << 20

// NewConfig returns the webhook section of a system type with its
// defaults: hubspot and shopify verify and parse their own formats;
// salesforce's Change Data Capture events arrive through a relay that
// signs them with an hmac header; http systems (ERP, POS, WMS) name their
// scheme and map JSON. Other types send no webhooks.
func NewConfig(systemType string) (*Config, error) {
	switch systemType {
	case "hubspot":
		return &Config{Verify: "hubspot", Parse: "hubspot"}, nil
	case "shopify":
		return &Config{Verify: "shopify", Parse: "shopify", MaxBody: ShopifyMaxBody}, nil
	case "salesforce":
		return &Config{Verify: "hmac", Parse: "salesforce"}, nil
	case "http":
		return &Config{Parse: "json"}, nil
	}
	return nil, fmt.Errorf("system type %q sends no webhooks (hubspot, shopify, salesforce and http systems do)", systemType)
}

// Section is the Webhook of a system type's config.Type: it makes the
// type's webhook: section with NewConfig's defaults. It panics for a type
// NewConfig does not know: a programming error.
func Section(systemType string) func() config.Validator {
	if _, err := NewConfig(systemType); err != nil {
		panic(fmt.Sprintf("webhook: %v", err))
	}
	return func() config.Validator {
		c, _ := NewConfig(systemType)
		return c
	}
}

// Of returns the webhook section of a system, as Section made it; false
// when the system has none.
func Of(s *config.System) (*Config, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.Webhook.(*Config)
	return c, ok && c != nil
}

func (c *Config) secrets() []string {
	s := slices.Clone(c.Secrets)
	if c.Secret != "" {
		s = append(s, c.Secret)
	}
	return s
}

// Validate checks the section offline; problems are config.FieldErrors
// relative to it. No message quotes a secret.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Verify == "":
		bad("verify", "required: one of %s", strings.Join(verifierNames, ", "))
	case !slices.Contains(verifierNames, c.Verify):
		bad("verify", "%q is not one of %s", c.Verify, strings.Join(verifierNames, ", "))
	}
	if !slices.Contains(parserNames, c.Parse) {
		bad("parse", "%q is not one of %s", c.Parse, strings.Join(parserNames, ", "))
	}
	if len(c.secrets()) == 0 {
		bad("secrets", "required: at least one signing secret (use ${VAR} to read it from the environment)")
	}
	for i, s := range c.Secrets {
		if s == "" {
			bad(fmt.Sprintf("secrets[%d]", i), "empty (an unset environment variable?)")
		}
	}
	if c.Window < 0 {
		bad("window", "must not be negative")
	}
	if c.MaxBody < 0 {
		bad("max_body", "must not be negative")
	}
	for key, set := range c.unused() {
		if set {
			bad(key, "not used by verify: %s", c.Verify)
		}
	}
	if c.Parse == "json" && c.JSON == nil {
		bad("json", "required with parse: json (table, id and fields to read from each delivery)")
	}
	if c.Parse != "json" && c.JSON != nil {
		bad("json", "only used with parse: json")
	}
	if c.Parse != "salesforce" && len(c.AvroSchemas) > 0 {
		bad("avro_schemas", "only used with parse: salesforce")
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if _, err := c.verifier(); err != nil {
		errs = append(errs, fieldErrors("", err)...)
	}
	if _, err := c.parser("system"); err != nil {
		prefix := ""
		if c.Parse == "json" {
			prefix = "json"
		}
		errs = append(errs, fieldErrors(prefix, err)...)
	}
	return errors.Join(errs...)
}

// unused reports the keys set that the chosen verifier ignores.
func (c *Config) unused() map[string]bool {
	u := map[string]bool{"version": c.Version != "" && c.Verify != "hubspot"}
	if c.Verify != "hmac" {
		u["prefix"] = c.Prefix != ""
		u["algorithm"] = c.Algorithm != ""
		u["encoding"] = c.Encoding != ""
		u["timestamp_header"] = c.TimestampHeader != ""
		u["delivery_id_header"] = c.DeliveryIDHeader != ""
	}
	if c.Verify != "hmac" && c.Verify != "stripe" {
		u["header"] = c.Header != ""
	}
	if c.Verify == "shopify" {
		u["window"] = c.Window != 0
	}
	return u
}

func (c *Config) verifier() (Verifier, error) {
	secrets := c.secrets()
	switch c.Verify {
	case "hubspot":
		return NewHubSpotVerifier(HubSpotConfig{Version: c.Version, Secrets: secrets, Window: c.Window})
	case "shopify":
		return NewShopifyVerifier(ShopifyConfig{Secrets: secrets})
	case "standard":
		return NewStandardVerifier(StandardConfig{Secrets: secrets, Window: c.Window})
	case "stripe":
		return NewStripeVerifier(StripeConfig{Header: c.Header, Secrets: secrets, Window: c.Window})
	case "hmac":
		return NewHMACVerifier(HMACConfig{Algorithm: c.Algorithm, Encoding: c.Encoding, Header: c.Header, Prefix: c.Prefix,
			TimestampHeader: c.TimestampHeader, DeliveryIDHeader: c.DeliveryIDHeader, Secrets: secrets, Window: c.Window})
	}
	return nil, config.FieldError{Path: "verify", Msg: fmt.Sprintf("%q is not one of %s", c.Verify, strings.Join(verifierNames, ", "))}
}

func (c *Config) parser(system string) (Parser, error) {
	switch c.Parse {
	case "hubspot":
		return NewHubSpotParser(HubSpotParserConfig{System: system})
	case "shopify":
		return NewShopifyParser(ShopifyParserConfig{System: system})
	case "salesforce":
		return NewSalesforceParser(SalesforceParserConfig{System: system, AvroSchemas: c.AvroSchemas})
	case "json":
		j := c.JSON
		if j == nil {
			j = &JSONConfig{}
		}
		return NewJSONParser(JSONParserConfig{System: system, Table: j.Table, Events: j.Events, ID: j.ID, Op: j.Op, Ops: j.Ops,
			OccurredAt: j.OccurredAt, OccurredAtUnit: j.OccurredAtUnit, DeliveryID: j.DeliveryID, Fields: j.Fields})
	}
	return nil, config.FieldError{Path: "parse", Msg: fmt.Sprintf("%q is not one of %s", c.Parse, strings.Join(parserNames, ", "))}
}

// System builds the intake's System for the system name.
func (c *Config) System(name string) (System, error) {
	v, err := c.verifier()
	if err != nil {
		return System{}, fmt.Errorf("systems.%s.webhook: %w", name, err)
	}
	p, err := c.parser(name)
	if err != nil {
		return System{}, fmt.Errorf("systems.%s.webhook: %w", name, err)
	}
	s := System{Name: name, Verifier: v, Parser: p, MaxBody: c.MaxBody}
	if d, ok := v.(interface{ DeliveryID(*Request) string }); ok {
		s.DeliveryID = d.DeliveryID
	}
	return s, nil
}

// IsOwnWrite reports whether a vendor's origin hint names cdcd's own
// client: it equals one of OwnSources, or, for an entry holding "=", has
// that entry as one of its ';'- or ','-separated parts (Salesforce's
// changeOrigin "com/salesforce/api/rest/62.0;client=cdcd").
func (c *Config) IsOwnWrite(hint string) bool {
	if hint == "" {
		return false
	}
	for _, own := range c.OwnSources {
		if own == hint {
			return true
		}
		if strings.Contains(own, "=") && slices.Contains(hintParts.Split(hint, -1), own) {
			return true
		}
	}
	return false
}

var hintParts = regexp.MustCompile(`\s*[;,]\s*`)

// fieldErrors turns a constructor's joined "key: message" errors into
// FieldErrors under prefix.
func fieldErrors(prefix string, err error) []error {
	var errs []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe config.FieldError
		if errors.As(e, &fe) {
			errs = append(errs, config.FieldError{Path: join(prefix, fe.Path), Msg: fe.Msg})
			return
		}
		key, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok || strings.ContainsAny(key, " \"") {
			key, msg = "", e.Error()
		}
		errs = append(errs, config.FieldError{Path: join(prefix, key), Msg: msg})
	}
	walk(err)
	return errs
}

func join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return prefix + "." + key
}
