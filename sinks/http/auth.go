package http

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// authenticate sets req's credentials for body, sent at now.
func (a *Auth) authenticate(req *http.Request, body []byte, now time.Time) {
	switch a.Type {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+a.Token)
	case "basic":
		req.SetBasicAuth(a.Username, a.Password)
	case "hmac":
		var ts string
		if a.TimestampHeader != "" {
			ts = strconv.FormatInt(now.Unix(), 10)
			req.Header.Set(a.TimestampHeader, ts)
		}
		header := a.Header
		if header == "" {
			header = "X-Signature"
		}
		req.Header.Set(header, a.Prefix+sign([]byte(a.Secret), a.Encoding, ts, body))
	}
}

// sign returns the HMAC-SHA256 of body under secret, encoded as "hex"
// (also for "") or "base64". With a timestamp, the signed bytes are
// "<timestamp>.<body>".
func sign(secret []byte, encoding, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	if timestamp != "" {
		mac.Write([]byte(timestamp))
		mac.Write([]byte{'.'})
	}
	mac.Write(body)
	sum := mac.Sum(nil)
	if encoding == "base64" {
		return base64.StdEncoding.EncodeToString(sum)
	}
	return hex.EncodeToString(sum)
}
