//go:build race

package e2etest

// race is set when the tests run under the race detector: cdcd is then
// built with it too, so the end-to-end runs check cdcd's goroutines.
const race = true

// Slowdown is how many times longer cdcd may take in these tests than its
// figures say: the figures are a release build's, and the race detector
// makes cdcd several times slower. A test that checks a figure of time
// allows it times Slowdown.
const Slowdown = 4
