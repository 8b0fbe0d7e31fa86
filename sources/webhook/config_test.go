package webhook

import (
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

// A webhook section builds the System that verifies and parses what its
// vendor sends.
func TestSectionSystem(t *testing.T) {
	t.Parallel()
	hubspot := must(NewConfig("hubspot"))
	hubspot.Secrets = testSecrets[1:]
	hubspot.Secret = testSecrets[0]
	if err := hubspot.Validate(); err != nil {
		t.Fatal(err)
	}
	s := must(hubspot.System("crm"))
	body := `[{"eventId":1,"subscriptionId":2,"portalId":3,"appId":4,"occurredAt":1763819940123,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":42,"propertyName":"email","propertyValue":"ada@example.com","changeSource":"CRM_UI"}]`
	r := hubSpotV3Request(testSecrets[0], "POST", "https://cdcd.example.com/webhooks/crm", body, testNow)
	if err := s.Verifier.Verify(r, testNow); err != nil {
		t.Fatalf("verify: %v", err)
	}
	got, err := s.Parser.Parse(r)
	if err != nil || len(got) != 1 || got[0].Source != "crm" || got[0].Table != "contacts" || string(got[0].Key[0].Value) != `"42"` {
		t.Fatalf("parse: %+v, %v", got, err)
	}
	if err := s.Verifier.Verify(hubSpotV3Request("other", "POST", r.URL, body, testNow), testNow); err == nil {
		t.Fatal("a foreign secret verified")
	}

	erp := must(NewConfig("http"))
	erp.Verify, erp.Header, erp.Prefix, erp.DeliveryIDHeader = "hmac", "X-Hub-Signature-256", "sha256=", "X-Github-Delivery"
	erp.Secrets = testSecrets
	erp.JSON = &JSONConfig{Table: "items", ID: "sku", Fields: []JSONField{{Name: "qty", Path: "qty"}}}
	if err := erp.Validate(); err != nil {
		t.Fatal(err)
	}
	s = must(erp.System("erp"))
	r = githubRequest(testSecrets[1], `{"sku":"A-1","qty":5}`)
	if err := s.Verifier.Verify(r, testNow); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if s.DeliveryID == nil || s.DeliveryID(r) != "72d3162e-cc78-11e3-81ab-4c9367dc0958" {
		t.Fatal("the delivery id header is not used")
	}
	got, err = s.Parser.Parse(r)
	if err != nil || len(got) != 1 || got[0].Table != "items" || string(got[0].After[0].Value) != "5" {
		t.Fatalf("parse: %+v, %v", got, err)
	}
}

func TestSectionValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, []string{"verify: required: one of hubspot, shopify, standard, stripe, hmac", `parse: "" is not one of`, "secrets: required"}},
		{"unknown", Config{Verify: "md5", Parse: "xml", Secret: "s"}, []string{`verify: "md5" is not one of`, `parse: "xml" is not one of`}},
		{"empty secret", Config{Verify: "shopify", Parse: "shopify", Secrets: []string{""}}, []string{"secrets[0]: empty (an unset environment variable?)"}},
		{"keys of another verifier", Config{Verify: "shopify", Parse: "shopify", Secret: "s", Version: "v2", Prefix: "x=", Window: 1}, []string{"version: not used by verify: shopify", "prefix: not used by verify: shopify", "window: not used"}},
		{"json without mapping", Config{Verify: "standard", Parse: "json", Secret: "whsec_c2VjcmV0"}, []string{"json: required with parse: json"}},
		{"mapping without json", Config{Verify: "hubspot", Parse: "hubspot", Secret: "s", JSON: &JSONConfig{}}, []string{"json: only used with parse: json"}},
		{"hmac without header", Config{Verify: "hmac", Parse: "salesforce", Secret: "s"}, []string{"header: required"}},
		{"mapping incomplete", Config{Verify: "hmac", Header: "X-Sig", Parse: "json", Secret: "s", JSON: &JSONConfig{ID: "id"}}, []string{"json.table: required"}},
		{"hubspot version", Config{Verify: "hubspot", Parse: "hubspot", Secret: "s", Version: "v9"}, []string{"version:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("valid")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in\n%v", w, err)
				}
			}
			for _, s := range append(tt.cfg.Secrets, tt.cfg.Secret) {
				if len(s) > 1 && strings.Contains(err.Error(), s) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
		})
	}
	if _, err := NewConfig("slack"); err == nil || !strings.Contains(err.Error(), "sends no webhooks") {
		t.Fatalf("slack: %v", err)
	}
}

func TestIsOwnWrite(t *testing.T) {
	t.Parallel()
	c := Config{OwnSources: []string{"INTEGRATION/1160453", "client=cdcd"}}
	for hint, want := range map[string]bool{
		"":                    false,
		"INTEGRATION/1160453": true,
		"INTEGRATION/999":     false,
		"CRM_UI":              false,
		"com/salesforce/api/rest/62.0;client=cdcd":       true,
		"com/salesforce/api/rest/62.0;client=cdcd-other": false,
		"client=cdcd, app=x":                             true,
	} {
		if got := c.IsOwnWrite(hint); got != want {
			t.Errorf("IsOwnWrite(%q) = %v, want %v", hint, got, want)
		}
	}
}

func TestSection(t *testing.T) {
	t.Parallel()
	c, ok := Section("shopify")().(*Config)
	if !ok || c.Verify != "shopify" || c.MaxBody != ShopifyMaxBody {
		t.Errorf("shopify section %+v", c)
	}
	if Section("shopify")() == config.Validator(c) {
		t.Error("two systems share one section")
	}
	defer func() {
		if recover() == nil {
			t.Error("a section for slack, which sends no webhooks, did not panic")
		}
	}()
	Section("slack")
}
