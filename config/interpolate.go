package config

import (
	"fmt"
	"strings"
)

// interpolate expands environment references in one scalar value:
//
//	${VAR}          the value of VAR; an error if VAR is unset
//	${VAR:-default} the value of VAR, or default if VAR is unset or empty
//	$$              a literal $ (so $${VAR} is the literal text ${VAR})
//
// A $ followed by anything else is kept as is. It returns the names of the
// variables referenced, and one message per problem. Messages never contain
// a variable's value.
func interpolate(s string, lookup func(string) (string, bool)) (string, []string, []string) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var (
		b     strings.Builder
		vars  []string
		probs []string
	)
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			probs = append(probs, "unterminated ${ (write $$ for a literal $)")
			break
		}
		ref := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validVarName(name) {
			probs = append(probs, fmt.Sprintf("invalid variable reference %q (use ${NAME} or ${NAME:-default}; $$ is a literal $)", "${"+ref+"}"))
			continue
		}
		vars = append(vars, name)
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			b.WriteString(def)
		case ok:
			b.WriteString(v)
		default:
			probs = append(probs, fmt.Sprintf("environment variable %s is not set (set it, or write ${%s:-default})", name, name))
		}
	}
	return b.String(), vars, probs
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
