package salesforce

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// jwtBearerGrant is the grant_type of the OAuth 2.0 JWT bearer flow.
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// assertionLife is the exp of a JWT assertion; Salesforce accepts at most
// three minutes.
const assertionLife = 2 * time.Minute

// authRetry is how long to wait after the token endpoint refused the
// credentials: an operator has to fix them, which retrying cannot do, but
// dead-lettering every record meanwhile would be worse.
const authRetry = time.Minute

// session is an access token and the instance it is valid for.
type session struct {
	token, instance string
}

// tokens issues and caches the session; invalidate drops a session a call
// found expired. Safe for concurrent use; one fetch at a time.
type tokens struct {
	mu      sync.Mutex
	current *session
	fetch   func(ctx context.Context) (*session, error)
}

func (t *tokens) get(ctx context.Context) (*session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current != nil {
		return t.current, nil
	}
	s, err := t.fetch(ctx)
	if err != nil {
		return nil, err
	}
	t.current = s
	return s, nil
}

// invalidate drops s unless another call already replaced it.
func (t *tokens) invalidate(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current == s {
		t.current = nil
	}
}

// tokenForm returns the form that requests a token.
func (w *Writer) tokenForm(now time.Time) (url.Values, error) {
	a := w.cfg.Auth
	if a.Type == "client_credentials" {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {a.ClientID}, "client_secret": {a.ClientSecret}}, nil
	}
	assertion, err := signJWT(w.key, map[string]any{
		"iss": a.ClientID,
		"sub": a.Username,
		"aud": w.audience,
		"exp": now.Add(assertionLife).Unix(),
	})
	if err != nil {
		return nil, err
	}
	return url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}, nil
}

// fetchToken requests a session from the token endpoint.
func (w *Writer) fetchToken(ctx context.Context) (*session, error) {
	form, err := w.tokenForm(time.Now())
	if err != nil {
		return nil, cdc.Permanent(fmt.Errorf("sign jwt assertion: %w", err))
	}
	endpoint := strings.TrimSuffix(w.cfg.LoginURL, "/") + "/services/oauth2/token"
	status, _, body, err := w.send(ctx, http.MethodPost, endpoint, "application/x-www-form-urlencoded", []byte(form.Encode()), "", "application/json", maxResponse)
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	var resp struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &resp)
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		return nil, fmt.Errorf("get token: HTTP %d", status)
	case status != http.StatusOK || resp.AccessToken == "":
		err := fmt.Errorf("get token (auth.type %s): HTTP %d %s: %s; check auth.client_id, the credentials and that the connected app is approved for the user",
			w.cfg.Auth.Type, status, resp.Error, resp.Description)
		return nil, cdc.RetryAfter(err, authRetry)
	}
	s := &session{token: resp.AccessToken, instance: strings.TrimSuffix(resp.InstanceURL, "/")}
	if w.cfg.InstanceURL != "" {
		s.instance = strings.TrimSuffix(w.cfg.InstanceURL, "/")
	}
	if s.instance == "" {
		return nil, errors.New("get token: response has no instance_url; set instance_url")
	}
	return s, nil
}

// signJWT returns the RS256-signed compact JWT of claims.
func signJWT(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`))
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// loadKey reads the RSA private key of the JWT flow (PKCS #8 or PKCS #1
// PEM).
func loadKey(a Auth) (*rsa.PrivateKey, error) {
	data := []byte(a.PrivateKey)
	if a.PrivateKeyFile != "" {
		var err error
		if data, err = os.ReadFile(a.PrivateKeyFile); err != nil {
			return nil, fmt.Errorf("auth.private_key_file: %w", err)
		}
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("auth.private_key: no PEM block found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth.private_key: %w", err)
		}
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("auth.private_key: %T is not an RSA key", k)
	}
	return nil, fmt.Errorf("auth.private_key: PEM block %q is not a private key", block.Type)
}

// defaultAudience is the aud claim for a login URL.
func defaultAudience(loginURL string) string {
	if u, err := url.Parse(loginURL); err == nil && (u.Host == "test.salesforce.com" || strings.Contains(u.Host, ".sandbox.")) {
		return "https://test.salesforce.com"
	}
	return "https://login.salesforce.com"
}
