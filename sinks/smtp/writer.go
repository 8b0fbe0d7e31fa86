// Package smtp sends one email per record through an SMTP server, using
// net/smtp: one connection per message.
//
// Every message carries a Message-ID derived from the system name, the
// event id and the record key, so a message sent again after an unknown
// outcome is recognisable as the same message (mail clients and most
// servers collapse duplicates by Message-ID).
package smtp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/syncapi"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// Writer sends records as emails. It implements syncapi.Writer and
// syncapi.Batcher with one record per call.
type Writer struct {
	name    string
	cfg     Config
	from    *mail.Address
	to      []*template.Template
	subject *template.Template
	body    *template.Template
	log     zerolog.Logger
	now     func() time.Time
}

var (
	_ syncapi.Writer  = (*Writer)(nil)
	_ syncapi.Batcher = (*Writer)(nil)
)

// New validates cfg and returns a writer. It does not connect.
func New(name string, cfg *Config, env config.Env) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Writer{name: name, cfg: *cfg, log: env.Log, now: time.Now}
	w.from, _ = mail.ParseAddress(cfg.From)
	for _, to := range cfg.To {
		t, _ := tmpl.Parse("to", to)
		w.to = append(w.to, t)
	}
	w.subject, _ = tmpl.Parse("subject", cfg.Subject)
	w.body, _ = tmpl.Parse("body", cfg.Body)
	return w, nil
}

// MaxBatch is 1: one message per call.
func (w *Writer) MaxBatch() int { return 1 }

// Write sends one message per record. Result.ExternalID is the
// Message-ID. A record that cannot be rendered and 5xx replies are
// permanent, but a recipient refused with 5xx while others are accepted
// only misses the message (logged); 4xx replies and connection failures
// are retried.
func (w *Writer) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	results := make([]syncapi.Result, len(records))
	for i := range records {
		msg, err := w.message(&records[i])
		if err != nil {
			results[i].Err = cdc.Permanent(err)
			continue
		}
		results[i].ExternalID = msg.id
		results[i].Err = classify(w.send(ctx, msg))
	}
	return results, nil
}

// send runs one SMTP transaction.
func (w *Writer) send(ctx context.Context, m *message) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	addr := net.JoinHostPort(w.cfg.Host, strconv.Itoa(w.cfg.Port))
	tlsConfig := &tls.Config{ServerName: w.cfg.Host, MinVersion: tls.VersionTLS12}
	var conn net.Conn
	var err error
	if w.cfg.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect to smtp server %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)

	c, err := smtp.NewClient(conn, w.cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if w.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return cdc.Permanent(fmt.Errorf("smtp server %s does not offer STARTTLS; set tls: tls or none", addr))
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if w.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", w.cfg.Username, w.cfg.Password, w.cfg.Host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(w.from.Address); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	// A recipient refused for good (5xx) does not hold back the others
	// (RFC 5321 3.3); one refused for now (4xx) retries the message, sent
	// to nobody yet.
	var refused error
	accepted := 0
	for _, rcpt := range m.rcpts {
		err := c.Rcpt(rcpt)
		if te, ok := errors.AsType[*textproto.Error](err); ok && te.Code >= 500 {
			refused = fmt.Errorf("smtp RCPT TO: %w", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("smtp RCPT TO: %w", err)
		}
		accepted++
	}
	if accepted == 0 {
		return refused
	}
	data, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := data.Write(m.data); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if err := data.Close(); err != nil {
		return fmt.Errorf("smtp message refused: %w", err)
	}
	_ = c.Quit() // the message is accepted; a failed QUIT changes nothing
	if refused != nil {
		w.log.Warn().Str("message_id", m.id).Int("recipients", len(m.rcpts)).Int("refused", len(m.rcpts)-accepted).
			Msg("smtp server refused some recipients; the message went to the others")
	}
	return nil
}

// classify marks 5xx replies permanent. 4xx replies and everything else
// (network, TLS, timeouts) stay transient.
func classify(err error) error {
	if err == nil || cdc.IsPermanent(err) {
		return err
	}
	if te, ok := errors.AsType[*textproto.Error](err); ok && te.Code >= 500 {
		return cdc.Permanent(err)
	}
	return err
}

// messageID is the Message-ID of the record's message.
func messageID(system, eventID, key, domain string) string {
	sum := sha256.Sum256([]byte(system + "\x00" + eventID + "\x00" + key))
	return "<" + hex.EncodeToString(sum[:16]) + ".cdcd@" + domain + ">"
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "cdcd.invalid"
}
