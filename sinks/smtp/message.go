package smtp

import (
	"bytes"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// message is a rendered email.
type message struct {
	id    string
	rcpts []string // envelope recipients
	data  []byte   // headers and body, CRLF line endings
}

// message renders the record. Rendered values never reach a header raw:
// addresses are parsed and re-encoded, the subject is an encoded word when
// it holds anything but printable ASCII (line breaks included).
func (w *Writer) message(r *syncapi.Record) (*message, error) {
	d := tmpl.NewData(r)
	var to []*mail.Address
	for i, t := range w.to {
		s, err := tmpl.Render(t, d)
		if err != nil {
			return nil, fmt.Errorf("render smtp to[%d]: %w", i, err)
		}
		if strings.TrimSpace(s) == "" {
			continue
		}
		list, err := mail.ParseAddressList(s)
		if err != nil {
			return nil, fmt.Errorf("smtp to[%d] does not render to addresses: %w", i, err)
		}
		to = append(to, list...)
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("smtp to renders no recipient")
	}
	subject, err := tmpl.Render(w.subject, d)
	if err != nil {
		return nil, fmt.Errorf("render smtp subject: %w", err)
	}
	body, err := tmpl.Render(w.body, d)
	if err != nil {
		return nil, fmt.Errorf("render smtp body: %w", err)
	}

	m := &message{id: messageID(w.name, d.EventID, r.Key, domainOf(w.from.Address))}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(fold(k+": "+v) + "\r\n") }
	header("From", w.from.String())
	addrs := make([]string, len(to))
	for i, a := range to {
		addrs[i] = a.String()
		m.rcpts = append(m.rcpts, a.Address)
	}
	header("To", strings.Join(addrs, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", clipSubject(subject)))
	header("Date", w.now().Format(time.RFC1123Z))
	header("Message-ID", m.id)
	if d.EventID != "" {
		header("X-Cdcd-Event-Id", mime.QEncoding.Encode("utf-8", d.EventID))
	}
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")))
	qp.Close()
	m.data = b.Bytes()
	return m, nil
}

// Header lines: folded past lineFold where they have whitespace to fold
// at; RFC 5322 forbids lines over 998 characters, which servers refuse.
const (
	lineFold   = 78
	maxSubject = 900
)

// clipSubject cuts a subject to maxSubject characters, marking the cut
// with "…", which also makes it an encoded word that folds.
func clipSubject(s string) string {
	if utf8.RuneCountInString(s) <= maxSubject {
		return s
	}
	return string([]rune(s)[:maxSubject-1]) + "…"
}

// fold breaks a header line at spaces so that its lines stay within
// lineFold characters where a space allows.
func fold(line string) string {
	var b strings.Builder
	for len(line) > lineFold {
		i := strings.LastIndexByte(line[:lineFold+1], ' ')
		if i <= 0 {
			if i = strings.IndexByte(line[lineFold:], ' '); i < 0 {
				break
			}
			i += lineFold
		}
		b.WriteString(line[:i] + "\r\n")
		line = line[i:] // the space starts the continuation line
	}
	b.WriteString(line)
	return b.String()
}
