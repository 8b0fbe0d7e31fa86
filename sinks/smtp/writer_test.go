package smtp

import (
	"context"
	"mime"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
	"github.com/cdcd-dev/cdcd/vendortest/smtpd"
)

func testConfig(srv *smtpd.Server) *Config {
	c := DefaultConfig()
	c.Host, c.Port = srv.Addr()
	c.TLS = TLSNone
	c.Username, c.Password = "cdcd", "pw-secret"
	c.From = "Shop <orders@shop.example>"
	c.To = []string{"{{.Fields.email}}", "ops@shop.example, Audit <audit@shop.example>"}
	c.Subject = "Order {{.Fields.order}} shipped"
	c.Body = "Hello {{.Fields.name}},\nyour order {{.Fields.order}} is on its way.\n"
	return c
}

func newWriter(t *testing.T, cfg *Config) *Writer {
	t.Helper()
	w, err := New("mail", cfg, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func record(fields map[string]any) syncapi.Record {
	return syncapi.Record{
		Event: &cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "orders", Pos: cdc.Position{CommitLSN: 0x30, Index: 2}},
		Op:    cdc.OpUpdate, Key: `{"id":42}`, Fields: fields,
	}
}

var order = map[string]any{"email": "Ada <ada@example.com>", "order": 1042.0, "name": "Ada Lovelace"}

func write(t *testing.T, w *Writer, r syncapi.Record) syncapi.Result {
	t.Helper()
	res, err := w.Write(context.Background(), []syncapi.Record{r})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func TestSendsOneMessagePerRecord(t *testing.T) {
	t.Parallel()
	srv := smtpd.New(t)
	srv.AddUser("cdcd", "pw-secret")
	w := newWriter(t, testConfig(srv))
	if w.MaxBatch() != 1 {
		t.Errorf("MaxBatch %d", w.MaxBatch())
	}
	first := write(t, w, record(order))
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	again := write(t, w, record(order)) // the same event sent again
	if again.Err != nil {
		t.Fatal(again.Err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("server accepted %d messages, want 2", len(msgs))
	}
	m := msgs[0]
	if m.User != "cdcd" || m.From != "orders@shop.example" ||
		strings.Join(m.To, ",") != "ada@example.com,ops@shop.example,audit@shop.example" {
		t.Errorf("envelope user %q from %q to %v", m.User, m.From, m.To)
	}
	pm, err := m.Parse()
	if err != nil {
		t.Fatal(err)
	}
	h := pm.Header
	if h.Get("Subject") != "Order 1042 shipped" || h.Get("From") != `"Shop" <orders@shop.example>` ||
		!strings.Contains(h.Get("To"), `"Ada" <ada@example.com>`) || h.Get("X-Cdcd-Event-Id") != "0/30/2" {
		t.Errorf("headers %v", h)
	}
	id := h.Get("Message-ID")
	if id == "" || id != first.ExternalID || !strings.HasSuffix(id, "@shop.example>") {
		t.Errorf("Message-ID %q, result %q", id, first.ExternalID)
	}
	if h2, _ := msgs[1].Parse(); h2.Header.Get("Message-ID") != id {
		t.Errorf("a re-send has Message-ID %q, want %q", h2.Header.Get("Message-ID"), id)
	}
	var body strings.Builder
	buf := make([]byte, 512)
	n, _ := pm.Body.Read(buf)
	body.Write(buf[:n])
	if !strings.Contains(body.String(), "Hello Ada Lovelace,") || !strings.Contains(body.String(), "1042 is on its way") {
		t.Errorf("body %q", body.String())
	}

	other := record(order)
	other.Event.Pos.Index = 3
	if res := write(t, w, other); res.ExternalID == id {
		t.Error("two events share a Message-ID")
	}
}

// Record values must not be able to add headers.
func TestSubjectCannotInjectHeaders(t *testing.T) {
	t.Parallel()
	srv := smtpd.New(t)
	srv.AddUser("cdcd", "pw-secret")
	cfg := testConfig(srv)
	cfg.Subject = "{{.Fields.name}}"
	w := newWriter(t, cfg)
	fields := map[string]any{"email": "ada@example.com", "order": 1.0, "name": "Hi\r\nBcc: evil@attacker.example"}
	if res := write(t, w, record(fields)); res.Err != nil {
		t.Fatal(res.Err)
	}
	m := srv.Messages()[0]
	pm, _ := m.Parse()
	if pm.Header.Get("Bcc") != "" || strings.Contains(strings.Join(m.To, ","), "evil") {
		t.Fatalf("injected: headers %v, rcpts %v", pm.Header, m.To)
	}
	if got, _ := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject")); got != "Hi\r\nBcc: evil@attacker.example" {
		t.Errorf("subject %q", got)
	}
}

func TestClassifiesReplies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		setup     func(*smtpd.Server)
		permanent bool
	}{
		{"452 mailbox full", func(s *smtpd.Server) { s.Reply("RCPT", 452, "4.2.2 Mailbox full") }, false},
		{"421 try later", func(s *smtpd.Server) { s.Reply("MAIL", 421, "4.7.0 Try again later") }, false},
		{"550 every recipient", func(s *smtpd.Server) {
			for range 3 {
				s.Reply("RCPT", 550, "5.1.1 No such user")
			}
		}, true},
		{"554 rejected", func(s *smtpd.Server) { s.Reply("DATA", 554, "5.7.1 Message rejected") }, true},
		{"535 bad password", func(s *smtpd.Server) { s.AddUser("cdcd", "other") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtpd.New(t)
			srv.AddUser("cdcd", "pw-secret")
			tc.setup(srv)
			res := write(t, newWriter(t, testConfig(srv)), record(order))
			if res.Err == nil || cdc.IsPermanent(res.Err) != tc.permanent {
				t.Fatalf("error %v, want permanent %v", res.Err, tc.permanent)
			}
			if strings.Contains(res.Err.Error(), "pw-secret") {
				t.Error("error quotes the password")
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
}

func TestStartTLSRequired(t *testing.T) {
	t.Parallel()
	srv := smtpd.New(t)
	cfg := testConfig(srv)
	cfg.TLS = TLSStartTLS
	res := write(t, newWriter(t, cfg), record(order))
	if !cdc.IsPermanent(res.Err) || !strings.Contains(res.Err.Error(), "STARTTLS") || len(srv.Messages()) != 0 {
		t.Fatalf("got %v", res.Err)
	}
}

func TestUnrenderableRecordIsPermanent(t *testing.T) {
	t.Parallel()
	srv := smtpd.New(t)
	srv.AddUser("cdcd", "pw-secret")
	w := newWriter(t, testConfig(srv))
	for _, fields := range []map[string]any{
		{"order": 1.0, "name": "x"},                            // no email field
		{"email": "not an address", "order": 1.0, "name": "x"}, // bad address
	} {
		if res := write(t, w, record(fields)); !cdc.IsPermanent(res.Err) {
			t.Errorf("%v: got %v", fields, res.Err)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Host = "smtp.example.com"
	c.TLS = TLSNone
	c.Username, c.Password = "u", "p"
	c.From = "nobody"
	c.To = []string{"{{"}
	err := c.Validate()
	for _, path := range []string{"tls", "from", "to[0]", "subject", "body"} {
		if err == nil || !strings.Contains(err.Error(), path+":") {
			t.Errorf("no problem reported for %s in %v", path, err)
		}
	}
}

// A recipient the server refuses for good does not keep the message from
// the others (RFC 5321 3.3).
func TestRefusedRecipientMissesOnlyItsCopy(t *testing.T) {
	t.Parallel()
	srv := smtpd.New(t)
	srv.AddUser("cdcd", "pw-secret")
	srv.Reply("RCPT", 550, "5.1.1 No such user")
	if res := write(t, newWriter(t, testConfig(srv)), record(order)); res.Err != nil {
		t.Fatal(res.Err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "ops@shop.example,audit@shop.example" {
		t.Fatalf("messages %+v, want one to ops and audit", msgs)
	}
}

// Servers refuse lines over 998 characters: long subjects and recipient
// lists are folded, and a subject past 900 characters is cut.
func TestLongHeadersAreFolded(t *testing.T) {
	t.Parallel()
	srv := smtpd.New(t)
	srv.AddUser("cdcd", "pw-secret")
	cfg := testConfig(srv)
	cfg.Subject = "{{.Fields.name}}"
	w := newWriter(t, cfg)
	words := strings.TrimSpace(strings.Repeat("shipped ", 110))
	for _, tc := range []struct{ name, want string }{
		{words, words},
		{strings.Repeat("x", 1200), strings.Repeat("x", 899) + "…"},
		{"Ünïcödé " + words, "Ünïcödé " + words},
	} {
		fields := map[string]any{"email": strings.Repeat("Someone <someone@example.com>, ", 40) + "ada@example.com", "order": 1.0, "name": tc.name}
		if res := write(t, w, record(fields)); res.Err != nil {
			t.Fatalf("subject of %d characters: %v", len(tc.name), res.Err)
		}
		msgs := srv.Messages()
		pm, err := msgs[len(msgs)-1].Parse()
		if err != nil {
			t.Fatal(err)
		}
		got, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
		if err != nil || got != tc.want {
			t.Fatalf("subject %q (%v), want %q", got, err, tc.want)
		}
	}
}
