package main

import (
	"os"
	"time"

	"github.com/rs/zerolog"
)

// consoleWriter is log.format console on f: colours only on a terminal, so
// logs redirected to a file or a pipe hold no escape codes.
func consoleWriter(f *os.File) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{Out: f, TimeFormat: time.RFC3339, NoColor: !isTerminal(f)}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
