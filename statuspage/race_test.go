//go:build race

package statuspage

// The race detector slows the page about tenfold.
const raceSlowdown = 10
