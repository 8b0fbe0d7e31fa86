package salesforce

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// JWTBearerGrant is the grant_type of the OAuth 2.0 JWT bearer flow.
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// maxAssertionLife is how far in the future an assertion's exp may be:
// the documented three minutes plus clock skew.
const maxAssertionLife = 3*time.Minute + 30*time.Second

// token serves POST /services/oauth2/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "must use HTTP POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if u, p, ok := r.BasicAuth(); ok {
			id, secret = u, p
		}
		if s.opts.ClientSecret == "" || id != s.opts.ClientID || secret != s.opts.ClientSecret {
			oauthError(w, http.StatusBadRequest, "invalid_client", "invalid client credentials")
			return
		}
	case JWTBearerGrant:
		if err := s.verifyAssertion(r.PostForm.Get("assertion"), time.Now()); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
			return
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		return
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	access := "00D5g000000TEST!" + base64.RawURLEncoding.EncodeToString(tok)
	now := time.Now()
	s.mu.Lock()
	s.issued++
	var exp time.Time
	if s.opts.TokenTTL > 0 {
		exp = now.Add(s.opts.TokenTTL)
	}
	s.tokens[access] = exp
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"instance_url": s.URL,
		"id":           s.URL + "/id/00D5g000000TEST/0055g000000USER",
		"token_type":   "Bearer",
		"issued_at":    strconv.FormatInt(now.UnixMilli(), 10),
		"scope":        "api",
		"signature":    base64.StdEncoding.EncodeToString(tok[:16]),
	})
}

// verifyAssertion checks a JWT bearer assertion: RS256 signed by JWTKey,
// iss the client id, sub the username, aud the audience, exp in the near
// future.
func (s *Server) verifyAssertion(assertion string, now time.Time) error {
	if s.opts.JWTKey == nil {
		return errors.New("jwt bearer flow not enabled for this client")
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return errors.New("invalid assertion")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "RS256" {
		return errors.New("invalid assertion: alg must be RS256")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("invalid assertion: malformed signature")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(s.opts.JWTKey, crypto.SHA256, digest[:], sig) != nil {
		return errors.New("invalid assertion: bad signature")
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp json.Number     `json:"exp"`
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return errors.New("invalid assertion: malformed claims")
	}
	exp, err := c.Exp.Int64()
	switch {
	case c.Iss != s.opts.ClientID:
		return errors.New("invalid_client_id: client identifier invalid")
	case c.Sub != s.opts.Username:
		return errors.New("user hasn't approved this consumer")
	case !audienceMatches(c.Aud, s.opts.Audience):
		return errors.New("audience is invalid")
	case err != nil:
		return errors.New("invalid assertion: exp is required")
	case !time.Unix(exp, 0).After(now):
		return errors.New("expired authorization code")
	case time.Unix(exp, 0).After(now.Add(maxAssertionLife)):
		return fmt.Errorf("invalid assertion: exp more than %v ahead", maxAssertionLife)
	}
	return nil
}

func audienceMatches(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	return d.Decode(v)
}

// session checks r's bearer token; s.mu is held.
func (s *Server) session(r *http.Request, now time.Time) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	exp, ok := s.tokens[tok]
	return ok && (exp.IsZero() || now.Before(exp))
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
