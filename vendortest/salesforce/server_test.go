package salesforce

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func do(t *testing.T, method, target, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, target, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if strings.Contains(body, "grant_type") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func clientToken(t *testing.T, s *Server) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}
	status, body := do(t, "POST", s.URL+"/services/oauth2/token", "", form.Encode())
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &tok) != nil {
		t.Fatalf("token: %d %s", status, body)
	}
	return tok.AccessToken
}

func TestUpsertByExternalID(t *testing.T) {
	t.Parallel()
	s := New(t, Options{ClientID: "id", ClientSecret: "secret"})
	tok := clientToken(t, s)
	u := s.URL + "/services/data/v60.0/sobjects/Contact/Ext__c/e1"
	if st, body := do(t, "PATCH", u, tok, `{"LastName":"A"}`); st != 201 || !strings.Contains(body, `"created":true`) {
		t.Fatalf("create: %d %s", st, body)
	}
	if st, _ := do(t, "PATCH", u, tok, `{"LastName":"B"}`); st != 204 {
		t.Fatalf("update: %d", st)
	}
	id := s.Insert("Contact", map[string]any{"Ext__c": "e1"})
	st, body := do(t, "PATCH", u, tok, `{"LastName":"C"}`)
	if st != 300 || !strings.Contains(body, "/services/data/v60.0/sobjects/Contact/"+id) {
		t.Fatalf("duplicate: %d %s", st, body)
	}
	if st, body := do(t, "GET", s.URL+"/services/data/v60.0/sobjects/Contact/Ext__c/none", tok, ""); st != 404 || !strings.Contains(body, "NOT_FOUND") {
		t.Fatalf("missing: %d %s", st, body)
	}
	s.ExpireTokens()
	if st, body := do(t, "PATCH", u, tok, `{}`); st != 401 || !strings.Contains(body, "INVALID_SESSION_ID") {
		t.Fatalf("expired: %d %s", st, body)
	}
}

func assertion(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	p, _ := json.Marshal(claims)
	signing := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + base64.RawURLEncoding.EncodeToString(p)
	d := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestJWTClaims(t *testing.T) {
	t.Parallel()
	key, _ := rsa.GenerateKey(rand.Reader, 1024)
	s := New(t, Options{ClientID: "id", JWTKey: &key.PublicKey, Username: "u@x"})
	now := time.Now()
	good := map[string]any{"iss": "id", "sub": "u@x", "aud": "https://login.salesforce.com", "exp": now.Add(time.Minute).Unix()}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	cases := []struct {
		name   string
		claims map[string]any
		want   int
	}{
		{"valid", good, 200},
		{"wrong issuer", with("iss", "other"), 400},
		{"wrong subject", with("sub", "v@x"), 400},
		{"wrong audience", with("aud", "https://test.salesforce.com"), 400},
		{"expired", with("exp", now.Add(-time.Second).Unix()), 400},
		{"exp too far", with("exp", now.Add(10*time.Minute).Unix()), 400},
	}
	for _, tc := range cases {
		form := url.Values{"grant_type": {JWTBearerGrant}, "assertion": {assertion(t, key, tc.claims)}}
		if st, body := do(t, "POST", s.URL+"/services/oauth2/token", "", form.Encode()); st != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, st, body, tc.want)
		}
	}
	if s.TokensIssued() != 1 {
		t.Errorf("%d tokens issued, want 1", s.TokensIssued())
	}
}
