//go:build race

package keyring

// raceEnabled is set when the race detector runs; it makes sync.Pool drop
// items at random, so allocation counts that rely on pooling do not hold.
const raceEnabled = true
