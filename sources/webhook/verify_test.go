package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const hubSpotURL = "https://cdcd.example.com/webhooks/hubspot?portal=62515"

// must returns v, panicking on a constructor error in test setup.
func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

func tamper(r *Request) *Request {
	c := *r
	c.Body = append([]byte(nil), r.Body...)
	c.Body[len(c.Body)/2] ^= 0x01
	return &c
}

func without(r *Request, header string) *Request {
	c := *r
	c.Header = r.Header.Clone()
	c.Header.Del(header)
	return &c
}

func withHeader(r *Request, header, value string) *Request {
	c := *r
	c.Header = r.Header.Clone()
	c.Header.Set(header, value)
	return &c
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := `[{"eventId":1,"objectId":123}]`
	newS, oldS := testSecrets[0], testSecrets[1]

	hub := must(NewHubSpotVerifier(HubSpotConfig{Secrets: testSecrets}))
	hubV2 := must(NewHubSpotVerifier(HubSpotConfig{Version: "v2", Secrets: testSecrets}))
	shop := must(NewShopifyVerifier(ShopifyConfig{Secrets: testSecrets}))
	std := must(NewStandardVerifier(StandardConfig{Secrets: testStandardSecrets}))
	stripe := must(NewStripeVerifier(StripeConfig{Secrets: testSecrets}))
	gh := must(NewHMACVerifier(HMACConfig{Header: "X-Hub-Signature-256", Prefix: "sha256=", DeliveryIDHeader: "X-GitHub-Delivery", Secrets: testSecrets}))
	tsv := must(NewHMACVerifier(HMACConfig{Header: "X-Signature", Encoding: "base64", TimestampHeader: "X-Timestamp", Secrets: testSecrets}))

	hubOK := hubSpotV3Request(newS, "POST", hubSpotURL, body, testNow.Add(-time.Minute))
	stdOK := standardRequest(testStandardSecrets[0], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", body, testNow)
	tests := []struct {
		name string
		v    Verifier
		r    *Request
		want error
	}{
		{"hubspot v3", hub, hubOK, nil},
		{"hubspot v3 old secret", hub, hubSpotV3Request(oldS, "POST", hubSpotURL, body, testNow), nil},
		{"hubspot v3 escaped uri", hub, hubSpotV3Request(newS, "POST", "https://cdcd.example.com/hooks%3Fa%40b", body, testNow), nil},
		{"hubspot v3 wrong secret", hub, hubSpotV3Request("other", "POST", hubSpotURL, body, testNow), ErrBadSignature},
		{"hubspot v3 other url", hub, func() *Request { r := *hubOK; r.URL = "https://evil.example/"; return &r }(), ErrBadSignature},
		{"hubspot v3 other method", hub, func() *Request { r := *hubOK; r.Method = "PUT"; return &r }(), ErrBadSignature},
		{"hubspot v3 expired", hub, hubSpotV3Request(newS, "POST", hubSpotURL, body, testNow.Add(-5*time.Minute-time.Second)), ErrExpired},
		{"hubspot v3 future", hub, hubSpotV3Request(newS, "POST", hubSpotURL, body, testNow.Add(6*time.Minute)), ErrExpired},
		{"hubspot v3 tampered", hub, tamper(hubOK), ErrBadSignature},
		{"hubspot v3 no signature", hub, without(hubOK, HeaderHubSpotSignatureV3), ErrMissingSignature},
		{"hubspot v3 no timestamp", hub, without(hubOK, HeaderHubSpotTimestamp), ErrMissingSignature},
		{"hubspot v3 timestamp not a number", hub, withHeader(hubOK, HeaderHubSpotTimestamp, "soon"), ErrBadSignature},
		{"hubspot v3 signature not base64", hub, withHeader(hubOK, HeaderHubSpotSignatureV3, "%%%"), ErrBadSignature},
		{"hubspot v2", hubV2, hubSpotV2Request(newS, "POST", hubSpotURL, body), nil},
		{"hubspot v2 old secret", hubV2, hubSpotV2Request(oldS, "POST", hubSpotURL, body), nil},
		{"hubspot v2 tampered", hubV2, tamper(hubSpotV2Request(newS, "POST", hubSpotURL, body)), ErrBadSignature},
		{"hubspot v2 missing", hubV2, hubOK, ErrMissingSignature},

		{"shopify", shop, shopifyRequest(newS, "products/update", body), nil},
		{"shopify old secret", shop, shopifyRequest(oldS, "products/update", body), nil},
		{"shopify wrong secret", shop, shopifyRequest("other", "products/update", body), ErrBadSignature},
		{"shopify tampered", shop, tamper(shopifyRequest(newS, "products/update", body)), ErrBadSignature},
		{"shopify missing", shop, without(shopifyRequest(newS, "products/update", body), HeaderShopifyHmac), ErrMissingSignature},

		{"standard", std, stdOK, nil},
		{"standard old secret", std, standardRequest(testStandardSecrets[1], "msg_1", body, testNow), nil},
		{"standard wrong secret", std, standardRequest("whsec_b3RoZXI=", "msg_1", body, testNow), ErrBadSignature},
		{"standard expired", std, standardRequest(testStandardSecrets[0], "msg_1", body, testNow.Add(-10*time.Minute)), ErrExpired},
		{"standard future", std, standardRequest(testStandardSecrets[0], "msg_1", body, testNow.Add(10*time.Minute)), ErrExpired},
		{"standard tampered", std, tamper(stdOK), ErrBadSignature},
		{"standard other id", std, withHeader(stdOK, HeaderStandardID, "msg_other"), ErrBadSignature},
		{"standard only v1a", std, withHeader(stdOK, HeaderStandardSignature, "v1a,c2ln"), ErrBadSignature},
		{"standard no id", std, without(stdOK, HeaderStandardID), ErrMissingSignature},
		{"standard no timestamp", std, without(stdOK, HeaderStandardTimestamp), ErrMissingSignature},
		{"standard no signature", std, without(stdOK, HeaderStandardSignature), ErrMissingSignature},

		{"stripe", stripe, stripeRequest(newS, body, testNow), nil},
		{"stripe old secret", stripe, stripeRequest(oldS, body, testNow), nil},
		{"stripe two v1", stripe, func() *Request {
			r := stripeRequest(oldS, body, testNow)
			sig := r.Header.Get(HeaderStripeSignature)
			return withHeader(r, HeaderStripeSignature, strings.Replace(sig, ",v1=", ",v1=00ff,v1=", 1))
		}(), nil},
		{"stripe wrong secret", stripe, stripeRequest("other", body, testNow), ErrBadSignature},
		{"stripe expired", stripe, stripeRequest(newS, body, testNow.Add(-301*time.Second)), ErrExpired},
		{"stripe future", stripe, stripeRequest(newS, body, testNow.Add(301*time.Second)), ErrExpired},
		{"stripe tampered", stripe, tamper(stripeRequest(newS, body, testNow)), ErrBadSignature},
		{"stripe no t", stripe, withHeader(stripeRequest(newS, body, testNow), HeaderStripeSignature, "v1=00"), ErrBadSignature},
		{"stripe missing", stripe, without(stripeRequest(newS, body, testNow), HeaderStripeSignature), ErrMissingSignature},

		{"hmac prefix hex", gh, githubRequest(newS, body), nil},
		{"hmac old secret", gh, githubRequest(oldS, body), nil},
		{"hmac wrong secret", gh, githubRequest("other", body), ErrBadSignature},
		{"hmac tampered", gh, tamper(githubRequest(newS, body)), ErrBadSignature},
		{"hmac no prefix", gh, withHeader(githubRequest(newS, body), "X-Hub-Signature-256", "abcd"), ErrBadSignature},
		{"hmac missing", gh, without(githubRequest(newS, body), "X-Hub-Signature-256"), ErrMissingSignature},
		{"hmac timestamped", tsv, timestampedRequest(newS, body, testNow), nil},
		{"hmac timestamped old secret", tsv, timestampedRequest(oldS, body, testNow), nil},
		{"hmac timestamped expired", tsv, timestampedRequest(newS, body, testNow.Add(-time.Hour)), ErrExpired},
		{"hmac timestamped future", tsv, timestampedRequest(newS, body, testNow.Add(time.Hour)), ErrExpired},
		{"hmac timestamped other time", tsv, withHeader(timestampedRequest(newS, body, testNow), "X-Timestamp", "1763820001"), ErrBadSignature},
		{"hmac timestamped no timestamp", tsv, without(timestampedRequest(newS, body, testNow), "X-Timestamp"), ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.v.Verify(tt.r, testNow)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			for _, s := range append(append([]string{}, testSecrets...), testStandardSecrets...) {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func TestDeliveryID(t *testing.T) {
	t.Parallel()
	shop := must(NewShopifyVerifier(ShopifyConfig{Secrets: testSecrets}))
	std := must(NewStandardVerifier(StandardConfig{Secrets: testStandardSecrets}))
	gh := must(NewHMACVerifier(HMACConfig{Header: "X-Hub-Signature-256", DeliveryIDHeader: "X-GitHub-Delivery", Secrets: testSecrets}))
	plain := must(NewHMACVerifier(HMACConfig{Header: "X-Hub-Signature-256", Secrets: testSecrets}))
	for _, tt := range []struct{ got, want string }{
		{shop.DeliveryID(shopifyRequest("s", "orders/create", "{}")), "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
		{std.DeliveryID(standardRequest(testStandardSecrets[0], "msg_1", "{}", testNow)), "msg_1"},
		{gh.DeliveryID(githubRequest("s", "{}")), "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{plain.DeliveryID(githubRequest("s", "{}")), ""},
	} {
		if tt.got != tt.want {
			t.Errorf("DeliveryID = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"hubspot", (&HubSpotConfig{Version: "v1", Secrets: []string{"a", ""}, Window: -time.Second}).Validate(),
			[]string{`version: "v1" is not v2 or v3`, "secrets[1]: empty", "window: -1s is negative"}},
		{"shopify", (&ShopifyConfig{}).Validate(), []string{"secrets: at least one secret is required"}},
		{"standard", (&StandardConfig{Secrets: []string{"plain", "whsec_%%"}}).Validate(),
			[]string{"secrets[0]: not of the form whsec_<base64 key>", "secrets[1]: the part after whsec_ is not base64"}},
		{"stripe", (&StripeConfig{Secrets: []string{""}}).Validate(), []string{"secrets[0]: empty"}},
		{"hmac", (&HMACConfig{Algorithm: "md5", Encoding: "base32", Secrets: []string{"s"}}).Validate(),
			[]string{`algorithm: "md5" is not sha256, sha1 or sha512`, `encoding: "base32" is not hex or base64`, "header: required"}},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: Validate = nil", tt.name)
			continue
		}
		got := strings.Split(tt.err.Error(), "\n")
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: Validate =\n%s\nwant\n%s", tt.name, tt.err, strings.Join(tt.want, "\n"))
		}
	}
	for _, err := range []error{
		(&HubSpotConfig{Secrets: []string{"s"}}).Validate(),
		(&StandardConfig{Secrets: testStandardSecrets}).Validate(),
		(&HMACConfig{Header: "X-Sig", Algorithm: "sha512", Secrets: []string{"s"}}).Validate(),
	} {
		if err != nil {
			t.Errorf("Validate of a valid config: %v", err)
		}
	}
	if _, err := NewShopifyVerifier(ShopifyConfig{}); err == nil {
		t.Error("NewShopifyVerifier accepted a config without secrets")
	}
}
