package webhook

import (
	"errors"
	"testing"
	"time"
)

// checkSigned asserts that a correctly signed request verifies, that any
// flipped body byte breaks it, and that arbitrary headers never panic.
func checkSigned(t *testing.T, v Verifier, signed *Request, junk *Request) {
	t.Helper()
	_ = v.Verify(junk, testNow)
	if err := v.Verify(signed, testNow); err != nil {
		t.Fatalf("Verify of a valid signature: %v", err)
	}
	if len(signed.Body) == 0 {
		return
	}
	for _, i := range []int{0, len(signed.Body) / 2, len(signed.Body) - 1} {
		bad := *signed
		bad.Body = append([]byte(nil), signed.Body...)
		bad.Body[i] ^= 0x80
		if err := v.Verify(&bad, testNow); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify with byte %d flipped = %v, want ErrBadSignature", i, err)
		}
	}
}

func FuzzHubSpotVerifier(f *testing.F) {
	f.Add([]byte(`[{"eventId":1}]`), "POST", hubSpotURL, "bad", "1763820000000", int64(0))
	f.Add([]byte{}, "", "%3a%3A%", "", "-1", int64(-1<<40))
	v := must(NewHubSpotVerifier(HubSpotConfig{Secrets: testSecrets}))
	v2 := must(NewHubSpotVerifier(HubSpotConfig{Version: "v2", Secrets: testSecrets}))
	f.Fuzz(func(t *testing.T, body []byte, method, url, sig, ts string, skewMS int64) {
		junk := &Request{Method: method, URL: url, Body: body, Header: headers(
			HeaderHubSpotSignatureV3, sig, HeaderHubSpotTimestamp, ts, HeaderHubSpotSignature, sig)}
		_ = v2.Verify(junk, testNow)
		at := testNow.Add(time.Duration(skewMS%int64(DefaultWindow/time.Millisecond)) * time.Millisecond)
		checkSigned(t, v, hubSpotV3Request(testSecrets[1], method, url, string(body), at), junk)
		checkSigned(t, v2, hubSpotV2Request(testSecrets[0], method, url, string(body)), junk)
	})
}

func FuzzShopifyVerifier(f *testing.F) {
	f.Add([]byte(`{"id":1}`), "bad")
	f.Add([]byte{0xff}, "")
	v := must(NewShopifyVerifier(ShopifyConfig{Secrets: testSecrets}))
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		junk := &Request{Body: body, Header: headers(HeaderShopifyHmac, sig)}
		checkSigned(t, v, shopifyRequest(testSecrets[1], "orders/create", string(body)), junk)
	})
}

func FuzzStandardVerifier(f *testing.F) {
	f.Add([]byte(`{"type":"contact.created"}`), "msg_1", "1763820000", "v1,abc v1a,def", int64(0))
	f.Add([]byte{}, "", "99999999999999999999", "v1,", int64(1))
	v := must(NewStandardVerifier(StandardConfig{Secrets: testStandardSecrets}))
	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig string, skew int64) {
		junk := &Request{Body: body, Header: headers(HeaderStandardID, id, HeaderStandardTimestamp, ts, HeaderStandardSignature, sig)}
		if id == "" {
			id = "msg_1"
		}
		at := testNow.Add(time.Duration(skew%300) * time.Second)
		checkSigned(t, v, standardRequest(testStandardSecrets[1], id, string(body), at), junk)
	})
}

func FuzzStripeVerifier(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1"}`), "t=1763820000,v1=00,v1=zz", int64(0))
	f.Add([]byte{}, ",,=,t=,v1", int64(-299))
	v := must(NewStripeVerifier(StripeConfig{Secrets: testSecrets}))
	f.Fuzz(func(t *testing.T, body []byte, sig string, skew int64) {
		junk := &Request{Body: body, Header: headers(HeaderStripeSignature, sig)}
		at := testNow.Add(time.Duration(skew%300) * time.Second)
		checkSigned(t, v, stripeRequest(testSecrets[1], string(body), at), junk)
	})
}

func FuzzHMACVerifier(f *testing.F) {
	f.Add([]byte(`{"action":"opened"}`), "sha256=00", "1763820000", int64(0))
	f.Add([]byte{}, "sha256=", "x", int64(5))
	gh := must(NewHMACVerifier(HMACConfig{Header: "X-Hub-Signature-256", Prefix: "sha256=", Secrets: testSecrets}))
	tsv := must(NewHMACVerifier(HMACConfig{Header: "X-Signature", Encoding: "base64", TimestampHeader: "X-Timestamp", Secrets: testSecrets}))
	f.Fuzz(func(t *testing.T, body []byte, sig, ts string, skew int64) {
		junk := &Request{Body: body, Header: headers("X-Hub-Signature-256", sig, "X-Signature", sig, "X-Timestamp", ts)}
		checkSigned(t, gh, githubRequest(testSecrets[1], string(body)), junk)
		at := testNow.Add(time.Duration(skew%300) * time.Second)
		checkSigned(t, tsv, timestampedRequest(testSecrets[1], string(body), at), junk)
	})
}
