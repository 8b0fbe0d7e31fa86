package salesforce

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

const ext = "Ext_Id__c"

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// ccServer returns a double that accepts client credentials, and a config
// for it.
func ccServer(t *testing.T, opts salesforce.Options) (*salesforce.Server, *Config) {
	t.Helper()
	opts.ClientID, opts.ClientSecret = "consumer-key", "consumer-secret"
	srv := salesforce.New(t, opts)
	c := NewConfig()
	c.LoginURL = srv.URL
	c.Object, c.ExternalIDField = "Contact", ext
	c.Rate = ratelimit.Rate{Requests: 1000, Per: time.Second}
	c.Timeout = 2 * time.Second
	c.Auth = Auth{Type: "client_credentials", ClientID: "consumer-key", ClientSecret: "consumer-secret"}
	return srv, c
}

func newWriter(t *testing.T, c *Config) *Writer {
	t.Helper()
	w, err := New("crm", c, zerolog.New(zerolog.NewTestWriter(t)), ratelimit.NewLimiters())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

var seq atomic.Int64

func upsert(fields map[string]any) syncapi.Record {
	return syncapi.Record{Event: &cdc.Event{DeliveryID: fmt.Sprint(seq.Add(1))}, Op: cdc.OpUpdate, Key: fmt.Sprint(seq.Add(1)), Fields: fields}
}

func remove(link string, fields map[string]any) syncapi.Record {
	r := upsert(fields)
	r.Op, r.ExternalID = cdc.OpDelete, link
	return r
}

func write(t *testing.T, w *Writer, recs ...syncapi.Record) []syncapi.Result {
	t.Helper()
	res, err := w.Write(context.Background(), recs)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(res) != len(recs) {
		t.Fatalf("%d results for %d records", len(res), len(recs))
	}
	return res
}

// byExt returns the stored Contact whose external id is v.
func byExt(srv *salesforce.Server, v string) (map[string]any, int) {
	var found map[string]any
	n := 0
	for _, r := range srv.Records("Contact") {
		if r[ext] == v {
			found, n = r, n+1
		}
	}
	return found, n
}

func TestUpsertCreateThenUpdate(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{})
	w := newWriter(t, c)

	res := write(t, w, upsert(map[string]any{ext: "u-1", "LastName": "Lovelace", "Email": "ada@example.com"}))
	if res[0].Err != nil || res[0].ExternalID == "" {
		t.Fatalf("create: %+v", res[0])
	}
	id := res[0].ExternalID
	res = write(t, w, upsert(map[string]any{ext: "u-1", "LastName": "King"}))
	if res[0].Err != nil || res[0].ExternalID != id {
		t.Fatalf("update: %+v, want id %s", res[0], id)
	}
	got, n := byExt(srv, "u-1")
	if n != 1 || got["LastName"] != "King" || got["Email"] != "ada@example.com" || got["Id"] != id {
		t.Fatalf("stored %d records, %v", n, got)
	}
	if srv.TokensIssued() != 1 {
		t.Errorf("%d tokens issued, want 1 (the session is reused)", srv.TokensIssued())
	}
	assertCallOptions(t, srv, "cdcd")
}

// assertCallOptions checks that every request carried
// Sforce-Call-Options: client=<client>.
func assertCallOptions(t *testing.T, srv *salesforce.Server, client string) {
	t.Helper()
	reqs := srv.Requests()
	if len(reqs) == 0 {
		t.Fatal("no requests")
	}
	for _, r := range reqs {
		if r.CallOptions != "client="+client {
			t.Errorf("%s %s: Sforce-Call-Options %q", r.Method, r.Path, r.CallOptions)
		}
	}
}

func TestJWTBearer(t *testing.T) {
	t.Parallel()
	key := testKey()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "server.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := salesforce.New(t, salesforce.Options{ClientID: "consumer-key", JWTKey: &key.PublicKey, Username: "integration@example.com"})
	config := func(username string) *Config {
		c := NewConfig()
		c.LoginURL, c.Object, c.ExternalIDField, c.ClientID = srv.URL, "Contact", ext, "cdcd-test"
		c.Auth = Auth{Type: "jwt", ClientID: "consumer-key", Username: username, PrivateKeyFile: keyFile}
		return c
	}

	w := newWriter(t, config("integration@example.com"))
	if res := write(t, w, upsert(map[string]any{ext: "j-1", "LastName": "Hopper"})); res[0].Err != nil {
		t.Fatalf("write: %v", res[0].Err)
	}
	if _, n := byExt(srv, "j-1"); n != 1 {
		t.Fatal("record not stored")
	}
	assertCallOptions(t, srv, "cdcd-test")

	// The double verifies the claims: another user is refused.
	other := newWriter(t, config("someone@example.com"))
	res := write(t, other, upsert(map[string]any{ext: "j-2", "LastName": "Hamilton"}))
	if d, ok := cdc.RetryAfterOf(res[0].Err); !ok || d != authRetry || !strings.Contains(res[0].Err.Error(), "invalid_grant") {
		t.Fatalf("refused assertion: %v, want invalid_grant retried after %v", res[0].Err, authRetry)
	}
	// So is an assertion signed by another key.
	otherKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	c := config("integration@example.com")
	c.Auth.PrivateKeyFile = ""
	c.Auth.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(otherKey)}))
	res = write(t, newWriter(t, c), upsert(map[string]any{ext: "j-3", "LastName": "Goldberg"}))
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "bad signature") {
		t.Fatalf("foreign key: %v, want a refused signature", res[0].Err)
	}
	if _, n := byExt(srv, "j-2"); n != 0 {
		t.Fatal("a refused writer stored a record")
	}
}

func TestCollectionMixedResults(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{Required: map[string][]string{"Contact": {"LastName"}}})
	dupA := srv.Insert("Contact", map[string]any{ext: "dup", "LastName": "A"})
	dupB := srv.Insert("Contact", map[string]any{ext: "dup", "LastName": "B"})
	srv.FailRecord("Contact", "locked", "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
	w := newWriter(t, c)

	res := write(t, w,
		upsert(map[string]any{ext: "ok", "LastName": "Turing"}),
		upsert(map[string]any{ext: "nameless"}),
		upsert(map[string]any{ext: "locked", "LastName": "Liskov"}),
		upsert(map[string]any{"LastName": "NoExternalID"}),
		upsert(map[string]any{ext: "dup", "LastName": "C"}),
	)
	if res[0].Err != nil || res[0].ExternalID == "" {
		t.Errorf("ok: %+v", res[0])
	}
	if err := res[1].Err; !cdc.IsPermanent(err) || !strings.Contains(err.Error(), "REQUIRED_FIELD_MISSING") {
		t.Errorf("missing field: %v, want permanent REQUIRED_FIELD_MISSING", err)
	}
	if err := res[2].Err; err == nil || cdc.IsPermanent(err) || !strings.Contains(err.Error(), "UNABLE_TO_LOCK_ROW") {
		t.Errorf("locked: %v, want transient UNABLE_TO_LOCK_ROW", err)
	}
	if err := res[3].Err; !cdc.IsPermanent(err) {
		t.Errorf("no external id: %v, want permanent", err)
	}
	if err := res[4].Err; !cdc.IsPermanent(err) || !strings.Contains(err.Error(), dupA) || !strings.Contains(err.Error(), dupB) {
		t.Errorf("duplicates: %v, want permanent naming %s and %s", err, dupA, dupB)
	}
	if _, n := byExt(srv, "ok"); n != 1 {
		t.Error("the valid record was not stored")
	}
	for _, v := range []string{"nameless", "locked"} {
		if _, n := byExt(srv, v); n != 0 {
			t.Errorf("failed record %s was stored", v)
		}
	}
	if r := srv.Records("Contact")[dupA]; r["LastName"] != "A" {
		t.Error("an ambiguous upsert changed a duplicate")
	}
	calls := 0
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "/composite/sobjects/Contact/"+ext) {
			calls++
		}
	}
	if calls != 1 {
		t.Errorf("%d collection calls, want 1", calls)
	}
	// The lock clears: the same record goes through on retry.
	if res := write(t, w, upsert(map[string]any{ext: "locked", "LastName": "Liskov"})); res[0].Err != nil {
		t.Errorf("retry of locked record: %v", res[0].Err)
	}
}

func TestExpiredSessionRefreshedOnce(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{})
	w := newWriter(t, c)
	write(t, w, upsert(map[string]any{ext: "s-1", "LastName": "A"}))
	srv.ExpireTokens()
	res := write(t, w, upsert(map[string]any{ext: "s-2", "LastName": "B"}))
	if res[0].Err != nil {
		t.Fatalf("write after expiry: %v", res[0].Err)
	}
	if _, n := byExt(srv, "s-2"); n != 1 {
		t.Fatal("record not stored after refresh")
	}
	if srv.TokensIssued() != 2 {
		t.Errorf("%d tokens issued, want 2", srv.TokensIssued())
	}
	var statuses []int
	for _, r := range srv.Requests() {
		statuses = append(statuses, r.Status)
	}
	// token, upsert, upsert refused, token, upsert
	want := []int{200, 200, 401, 200, 200}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	assertCallOptions(t, srv, "cdcd")
}
