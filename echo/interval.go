package echo

import (
	"math"
	"strconv"
	"strings"
)

// interval is a duration as Postgres keeps one: months, days and
// microseconds, each counted on its own (a month is not 30 days, nor a
// day 24 hours, across a daylight saving change).
type interval struct {
	months, days, micros int64
}

// sameInterval reports whether a and b name the same interval, one of them
// in ISO 8601 (P1DT2H, what captured events and so the link's base carry)
// and the other in ISO 8601 too or in Postgres's default output ("1 day
// 02:00:00", "@ 1 day 2 hours" verbose), as a vendor may store a value
// cdcd sent. Two texts in Postgres's own form are not compared: they are
// equal only as text.
func sameInterval(a, b string) bool {
	if !isoDuration(a) && !isoDuration(b) {
		return false
	}
	ia, ok := parseInterval(a)
	if !ok {
		return false
	}
	ib, ok := parseInterval(b)
	return ok && ia == ib
}

func isoDuration(s string) bool {
	return strings.HasPrefix(s, "P") || strings.HasPrefix(s, "-P")
}

// parseInterval reads an interval in ISO 8601 or Postgres's postgres and
// postgres_verbose styles. Fractions are taken only where Postgres prints
// them (seconds, and hours and minutes in ISO 8601), so a value is read
// exactly or not at all.
func parseInterval(s string) (interval, bool) {
	if len(s) == 0 || len(s) > 100 {
		return interval{}, false
	}
	if isoDuration(s) {
		return parseISO(s)
	}
	return parsePostgres(s)
}

// parseISO reads P[nY][nM][nW][nD][T[nH][nM][nS]], each n possibly
// negative; a leading minus negates the whole.
func parseISO(s string) (interval, bool) {
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	s = s[1:] // P
	if s == "" {
		return interval{}, false
	}
	var iv interval
	inTime := false
	seen := ""
	for s != "" {
		if s[0] == 'T' {
			if inTime || len(s) == 1 {
				return interval{}, false
			}
			inTime, s = true, s[1:]
			continue
		}
		i := 0
		for i < len(s) && (s[i] == '-' || s[i] == '+' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9')) {
			i++
		}
		if i == 0 || i == len(s) {
			return interval{}, false
		}
		num, unit := s[:i], s[i]
		s = s[i+1:]
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+",") {
			return interval{}, false
		}
		seen += key + ","
		var ok bool
		switch {
		case !inTime && unit == 'Y':
			ok = addWhole(&iv.months, num, 12)
		case !inTime && unit == 'M':
			ok = addWhole(&iv.months, num, 1)
		case !inTime && unit == 'W':
			ok = addWhole(&iv.days, num, 7)
		case !inTime && unit == 'D':
			ok = addWhole(&iv.days, num, 1)
		case inTime && unit == 'H':
			ok = addMicros(&iv.micros, num, 3_600_000_000)
		case inTime && unit == 'M':
			ok = addMicros(&iv.micros, num, 60_000_000)
		case inTime && unit == 'S':
			ok = addMicros(&iv.micros, num, 1_000_000)
		}
		if !ok {
			return interval{}, false
		}
	}
	if neg {
		iv = interval{-iv.months, -iv.days, -iv.micros}
	}
	return iv, true
}

// parsePostgres reads "1 year 2 mons -3 days +04:05:06.5" (postgres) and
// "@ 1 year 2 mons 3 days 4 hours 5 mins 6.5 secs ago" (postgres_verbose).
func parsePostgres(s string) (interval, bool) {
	f := strings.Fields(s)
	verbose := len(f) > 0 && f[0] == "@"
	if verbose {
		f = f[1:]
	}
	ago := verbose && len(f) > 0 && f[len(f)-1] == "ago"
	if ago {
		f = f[:len(f)-1]
	}
	if len(f) == 0 {
		return interval{}, false
	}
	if verbose && len(f) == 1 && f[0] == "0" { // "@ 0"
		return interval{}, true
	}
	var iv interval
	seen := ""
	for len(f) > 0 {
		if strings.Contains(f[0], ":") {
			if strings.Contains(seen, "time,") || !addClock(&iv.micros, f[0]) {
				return interval{}, false
			}
			seen += "time,"
			f = f[1:]
			continue
		}
		if len(f) < 2 {
			return interval{}, false
		}
		num, unit := f[0], f[1]
		f = f[2:]
		var ok bool
		switch unit {
		case "year", "years":
			ok = addWhole(&iv.months, num, 12)
		case "mon", "mons":
			ok = addWhole(&iv.months, num, 1)
		case "day", "days":
			ok = addWhole(&iv.days, num, 1)
		case "hour", "hours":
			ok = verbose && addMicros(&iv.micros, num, 3_600_000_000)
		case "min", "mins":
			ok = verbose && addMicros(&iv.micros, num, 60_000_000)
		case "sec", "secs":
			ok = verbose && addMicros(&iv.micros, num, 1_000_000)
		}
		if !ok || strings.Contains(seen, unit+",") {
			return interval{}, false
		}
		seen += unit + ","
	}
	if ago {
		iv = interval{-iv.months, -iv.days, -iv.micros}
	}
	return iv, true
}

// addWhole adds a whole number num times scale to *dst.
func addWhole(dst *int64, num string, scale int64) bool {
	n, err := strconv.ParseInt(strings.TrimPrefix(num, "+"), 10, 64)
	if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
		return false
	}
	*dst += n * scale
	return true
}

// addMicros adds num, a decimal with up to six places of fraction, times
// scale microseconds to *dst, when that is a whole number of
// microseconds.
func addMicros(dst *int64, num string, scale int64) bool {
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimLeft(num, "+-")
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" && frac == "" {
		return false
	}
	w := int64(0)
	if whole != "" {
		n, err := strconv.ParseUint(whole, 10, 32)
		if err != nil || int64(n) > math.MaxInt64/4/scale {
			return false
		}
		w = int64(n) * scale
	}
	if frac != "" {
		if len(frac) > 6 {
			return false
		}
		n, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return false
		}
		den := int64(1)
		for range frac {
			den *= 10
		}
		if int64(n)*scale%den != 0 { // not a whole number of microseconds
			return false
		}
		w += int64(n) * scale / den
	}
	if neg {
		w = -w
	}
	*dst += w
	return true
}

// addClock adds [+-]H:MM:SS[.ffffff] (or [+-]H:MM) to *dst.
func addClock(dst *int64, s string) bool {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	var us int64
	for i, p := range parts {
		if p == "" || (i < len(parts)-1 && strings.Contains(p, ".")) || strings.ContainsAny(p, "+-") {
			return false
		}
	}
	if !addMicros(&us, parts[0], 3_600_000_000) || !addMicros(&us, parts[1], 60_000_000) {
		return false
	}
	if len(parts) == 3 && !addMicros(&us, parts[2], 1_000_000) {
		return false
	}
	if neg {
		us = -us
	}
	*dst += us
	return true
}
