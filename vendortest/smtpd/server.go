// Package smtpd is a tiny in-process SMTP server for tests: EHLO/HELO,
// AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP and QUIT over plain TCP (no
// STARTTLS). It records every accepted message and can be told to answer
// a command with a given reply. Like real servers, it refuses a message
// with a line over 998 characters (RFC 5321 4.5.3.1.6).
package smtpd

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Message is one accepted message.
type Message struct {
	User string // the authenticated user, if any
	From string
	To   []string
	Data []byte // as received, dot-unstuffed, LF line endings
}

// Parse parses the message's headers and body.
func (m Message) Parse() (*mail.Message, error) { return mail.ReadMessage(bytes.NewReader(m.Data)) }

// Server is the double.
type Server struct {
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	users   map[string]string
	msgs    []Message
	replies map[string][]string // command -> scripted replies ("DATA" is the reply after the data)
	conns   map[net.Conn]bool
}

// New starts a server on a loopback port that stops when the test ends.
func New(t testing.TB) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, users: map[string]string{}, replies: map[string][]string{}, conns: map[net.Conn]bool{}}
	s.wg.Go(s.accept)
	t.Cleanup(s.close)
	return s
}

// Addr returns the host and port to connect to.
func (s *Server) Addr() (string, int) {
	a := s.ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// AddUser adds an account; once one exists, MAIL requires AUTH.
func (s *Server) AddUser(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[user] = password
}

// Reply makes the next command cmd (MAIL, RCPT, or DATA for the reply
// after the message data) answer code and text instead of accepting.
func (s *Server) Reply(cmd string, code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[cmd] = append(s.replies[cmd], strconv.Itoa(code)+" "+text)
}

// Messages returns the accepted messages in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

func (s *Server) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.serve(textproto.NewConn(c))
		})
	}
}

// scripted returns and consumes the scripted reply for cmd.
func (s *Server) scripted(cmd string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.replies[cmd]
	if len(rs) == 0 {
		return "", false
	}
	s.replies[cmd] = rs[1:]
	return rs[0], true
}

func (s *Server) serve(c *textproto.Conn) {
	say := func(format string, args ...any) { c.PrintfLine(format, args...) }
	say("220 smtpd ESMTP ready")
	var user string
	var cur *Message
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if verb == "MAIL" || verb == "RCPT" {
			if r, ok := s.scripted(verb); ok {
				say("%s", r)
				continue
			}
		}
		switch verb {
		case "EHLO":
			say("250-smtpd greets %s", arg)
			say("250-8BITMIME")
			say("250 AUTH PLAIN")
		case "HELO":
			say("250 smtpd")
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				say("504 5.5.4 Unrecognized authentication type")
				continue
			}
			if resp == "" {
				say("334 ")
				if resp, err = c.ReadLine(); err != nil {
					return
				}
			}
			if u, ok := s.login(resp); ok {
				user = u
				say("235 2.7.0 Authentication successful")
			} else {
				say("535 5.7.8 Authentication credentials invalid")
			}
		case "MAIL":
			if s.needsAuth() && user == "" {
				say("530 5.7.0 Authentication required")
				continue
			}
			cur = &Message{User: user, From: path(arg, "FROM:")}
			say("250 2.1.0 Ok")
		case "RCPT":
			if cur == nil {
				say("503 5.5.1 Need MAIL first")
				continue
			}
			cur.To = append(cur.To, path(arg, "TO:"))
			say("250 2.1.5 Ok")
		case "DATA":
			if cur == nil || len(cur.To) == 0 {
				say("503 5.5.1 Need RCPT first")
				continue
			}
			say("354 End data with <CR><LF>.<CR><LF>")
			data, err := io.ReadAll(c.DotReader())
			if err != nil {
				return
			}
			if r, ok := s.scripted("DATA"); ok {
				say("%s", r)
			} else if tooLong(data) {
				say("500 5.5.0 Line too long")
			} else {
				cur.Data = data
				s.mu.Lock()
				s.msgs = append(s.msgs, *cur)
				s.mu.Unlock()
				say("250 2.0.0 Ok: queued")
			}
			cur = nil
		case "RSET":
			cur = nil
			say("250 2.0.0 Ok")
		case "NOOP":
			say("250 2.0.0 Ok")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Command not recognized")
		}
	}
}

// tooLong reports whether data has a line over 998 characters.
func tooLong(data []byte) bool {
	for line := range bytes.Lines(data) {
		if len(bytes.TrimRight(line, "\r\n")) > 998 {
			return true
		}
	}
	return false
}

func (s *Server) needsAuth() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.users) > 0
}

// login checks an AUTH PLAIN response: base64 of authzid NUL user NUL password.
func (s *Server) login(resp string) (string, bool) {
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return "", false
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pw, ok := s.users[parts[1]]
	return parts[1], ok && pw == parts[2]
}

// path extracts the address of "FROM:<a@b> SIZE=10".
func path(arg, prefix string) string {
	rest := strings.TrimSpace(arg)
	if len(rest) >= len(prefix) && strings.EqualFold(rest[:len(prefix)], prefix) {
		rest = strings.TrimSpace(rest[len(prefix):])
	}
	rest, _, _ = strings.Cut(rest, " ")
	return strings.TrimSuffix(strings.TrimPrefix(rest, "<"), ">")
}
