package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"strconv"
	"time"
)

// Signing helpers compute signatures the way each sender does.

var (
	testNow     = time.Unix(1763820000, 0)
	testSecrets = []string{"new-secret-2026", "old-secret-2025"}
	// whsec_ keys are base64 of "standard-key-new" and "standard-key-old".
	testStandardSecrets = []string{
		"whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-key-new")),
		"whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-key-old")),
	}
)

func mac(newHash func() hash.Hash, key []byte, parts ...string) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func hubSpotV3Request(secret, method, url, body string, at time.Time) *Request {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	sig := base64.StdEncoding.EncodeToString(mac(sha256.New, []byte(secret), method, hubSpotURI(url), body, ts))
	return &Request{Method: method, URL: url, Body: []byte(body), Header: headers(
		HeaderHubSpotSignatureV3, sig,
		HeaderHubSpotTimestamp, ts,
	)}
}

func hubSpotV2Request(secret, method, url, body string) *Request {
	sum := sha256.Sum256([]byte(secret + method + url + body))
	return &Request{Method: method, URL: url, Body: []byte(body), Header: headers(
		HeaderHubSpotSignature, hex.EncodeToString(sum[:]),
	)}
}

func shopifyRequest(secret, topic, body string) *Request {
	return &Request{Method: "POST", URL: "https://cdcd.example.com/webhooks/shopify", Body: []byte(body), Header: headers(
		HeaderShopifyHmac, base64.StdEncoding.EncodeToString(mac(sha256.New, []byte(secret), body)),
		HeaderShopifyTopic, topic,
		HeaderShopifyWebhookID, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
		HeaderShopifyTriggered, "2026-11-22T14:00:00.123Z",
	)}
}

func standardRequest(whsec, id, body string, at time.Time) *Request {
	key, _ := standardKey(whsec)
	ts := strconv.FormatInt(at.Unix(), 10)
	sig := base64.StdEncoding.EncodeToString(mac(sha256.New, key, id, ".", ts, ".", body))
	return &Request{Method: "POST", Body: []byte(body), Header: headers(
		HeaderStandardID, id,
		HeaderStandardTimestamp, ts,
		HeaderStandardSignature, "v1a,bm90LWFuLWVkMjU1MTktc2ln v1,"+sig,
	)}
}

func stripeRequest(secret, body string, at time.Time) *Request {
	ts := strconv.FormatInt(at.Unix(), 10)
	sig := hex.EncodeToString(mac(sha256.New, []byte(secret), ts, ".", body))
	return &Request{Method: "POST", Body: []byte(body), Header: headers(
		HeaderStripeSignature, "t="+ts+",v1="+sig+",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
	)}
}

// githubRequest signs like GitHub: X-Hub-Signature-256: sha256=<hex>.
func githubRequest(secret, body string) *Request {
	return &Request{Method: "POST", Body: []byte(body), Header: headers(
		"X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(sha256.New, []byte(secret), body)),
		"X-Github-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
	)}
}

// timestampedRequest signs "<ts>.<body>" as base64 HMAC-SHA256.
func timestampedRequest(secret, body string, at time.Time) *Request {
	ts := strconv.FormatInt(at.Unix(), 10)
	return &Request{Method: "POST", Body: []byte(body), Header: headers(
		"X-Signature", base64.StdEncoding.EncodeToString(mac(sha256.New, []byte(secret), ts, ".", body)),
		"X-Timestamp", ts,
	)}
}

// headers builds a canonicalised header from name, value pairs.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}
