package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/rotor-dev/rotor/keyring/keyid"
)

var testSalt = bytes.Repeat([]byte{0x5a}, SaltSize)

// testLog is a log in a temporary directory, with its anchor in a
// different directory as the lead will deploy it.
type testLog struct {
	*Log
	path, anchor string
}

func newTestLog(t *testing.T, opts ...Option) testLog {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "audit.log")
	anchor := filepath.Join(dir, "store", "audit.head")
	l, err := Open(path, anchor, testSalt, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return testLog{Log: l, path: path, anchor: anchor}
}

// event returns a plausible event, different for each i.
func event(i int) Event {
	statuses := []string{StatusStarted, StatusSucceeded, StatusFailed, StatusDenied}
	return Event{
		Initiator: "user:ana",
		Action:    "rotate.promote",
		Secret:    "clerk",
		KeyID:     keyid.Of(testSalt, fmt.Sprintf("sk_test_value_%d", i)),
		Status:    statuses[i%len(statuses)],
		Detail:    fmt.Sprintf("event %d <with> \"quotes\" & ünïcode", i),
	}
}

func appendN(t *testing.T, l testLog, n int) []Record {
	t.Helper()
	recs := make([]Record, 0, n)
	for i := range n {
		r, err := l.Append(t.Context(), event(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// readLines returns the lines of the file at path without their newlines;
// the file must end with one.
func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		return nil
	}
	if data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return bytes.Split(data[:len(data)-1], []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustParse(t *testing.T, line []byte) Record {
	t.Helper()
	r, err := ParseRecord(line)
	if err != nil {
		t.Fatalf("ParseRecord(%s): %v", line, err)
	}
	return r
}

func mustEncode(t *testing.T, r Record) []byte {
	t.Helper()
	line, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(line, []byte("\n"))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// memBackend is a minimal Backend for the package's own tests (package
// audittest has the full reference, but cannot be imported from here).
type memBackend struct {
	mu   sync.Mutex
	vals map[string][]byte
	vers map[string]int
}

func newMemBackend() *memBackend {
	return &memBackend{vals: map[string][]byte{}, vers: map[string]int{}}
}

func (m *memBackend) Get(_ context.Context, key string) ([]byte, Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	if !ok {
		return nil, NoVersion, ErrNotExist
	}
	return bytes.Clone(v), Version(strconv.Itoa(m.vers[key])), nil
}

func (m *memBackend) Put(_ context.Context, key string, value []byte, expected Version) (Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := NoVersion
	if _, ok := m.vals[key]; ok {
		cur = Version(strconv.Itoa(m.vers[key]))
	}
	if cur != expected {
		return NoVersion, ErrConflict
	}
	m.vals[key] = bytes.Clone(value)
	m.vers[key]++
	return Version(strconv.Itoa(m.vers[key])), nil
}
