package killtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Ledger entry operations.
const (
	OpMint   = "mint"
	OpRevoke = "revoke"
)

// Entry is one line of the issuer's ledger: a key it minted, or a key it
// revoked. The ledger is the issuer's own database, so it holds values.
type Entry struct {
	Op        string `json:"op"`
	RequestID string `json:"request_id,omitempty"`
	Value     string `json:"value"`
	KeyID     string `json:"key_id,omitempty"` // revoke: the id rotor named
}

// request is the part of an exec protocol (version 2) request the issuer
// reads; see package provider/exec.
type request struct {
	Version   int    `json:"version"`
	Action    string `json:"action"`
	RequestID string `json:"request_id"`
	Value     string `json:"value"`
	KeyID     string `json:"key_id"`
}

type answer struct {
	Version  int    `json:"version"`
	Value    string `json:"value,omitempty"`
	Error    string `json:"error,omitempty"`
	Rejected bool   `json:"rejected,omitempty"`
}

// Serve answers one exec protocol (version 2) request read from in,
// writing the answer to out, against the ledger at path:
//
//   - mint appends a new key with the request id, unless the ledger has
//     one for that id already, which it answers again (the protocol's
//     idempotent mint);
//   - test accepts a value minted and not revoked, and rejects any other;
//   - revoke appends the value as revoked (idempotent).
//
// Each request holds an exclusive lock on the ledger from its read to its
// append, and the append is one write, so a process killed at any moment
// either minted (the line is there) or did not, and concurrent issuers
// never both mint for one request id.
func Serve(path string, in io.Reader, out io.Writer) error {
	var req request
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("issuer: decode request: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("issuer: lock ledger: %w", err)
	}
	led, err := decode(f)
	if err != nil {
		return err
	}
	var ans answer
	switch req.Action {
	case "mint":
		if req.RequestID == "" {
			return errors.New("issuer: mint without request_id")
		}
		v, ok := led.byRequest[req.RequestID]
		if !ok {
			v = newValue()
			if err := appendEntry(f, Entry{Op: OpMint, RequestID: req.RequestID, Value: v}); err != nil {
				return err
			}
		}
		ans.Value = v
	case "test":
		if !led.Valid(req.Value) {
			ans.Error, ans.Rejected = "unknown or revoked credential", true
		}
	case "revoke":
		if !led.Revoked[req.Value] {
			if err := appendEntry(f, Entry{Op: OpRevoke, Value: req.Value, KeyID: req.KeyID}); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("issuer: unknown action %q", req.Action)
	}
	ans.Version = 2
	return json.NewEncoder(out).Encode(ans)
}

// Mint adds a key to the ledger at path as if an operator had created it
// in the issuer's dashboard (for `rotor stage`), and returns its value.
func Mint(path, requestID string) (string, error) {
	var out bytes.Buffer
	in := fmt.Sprintf(`{"version":2,"action":"mint","request_id":%q}`, requestID)
	if err := Serve(path, bytes.NewBufferString(in), &out); err != nil {
		return "", err
	}
	var ans answer
	if err := json.Unmarshal(out.Bytes(), &ans); err != nil {
		return "", err
	}
	return ans.Value, nil
}

func appendEntry(f *os.File, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("issuer: append to ledger: %w", err)
	}
	return nil
}

func newValue() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return "kt_" + hex.EncodeToString(b)
}

// Ledger is what the issuer has done, read back from its file.
type Ledger struct {
	// Minted lists every key minted, in order.
	Minted []Entry
	// Revoked holds the values revoked; RevokedIDs the key ids rotor
	// named when it asked.
	Revoked    map[string]bool
	RevokedIDs map[string]bool
	byRequest  map[string]string
}

// Valid reports whether the issuer accepts value: minted, not revoked.
func (l *Ledger) Valid(value string) bool {
	for _, e := range l.Minted {
		if e.Value == value {
			return !l.Revoked[value]
		}
	}
	return false
}

// ReadLedger reads the ledger at path; a missing file is an empty ledger.
// It takes the ledger's lock, so it never reads half of an issuer's work.
func ReadLedger(path string) (*Ledger, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return decode(bytes.NewReader(nil))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		return nil, fmt.Errorf("lock ledger: %w", err)
	}
	return decode(f)
}

func decode(r io.Reader) (*Ledger, error) {
	l := &Ledger{Revoked: map[string]bool{}, RevokedIDs: map[string]bool{}, byRequest: map[string]string{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("issuer ledger: %w", err)
		}
		switch e.Op {
		case OpMint:
			l.Minted = append(l.Minted, e)
			l.byRequest[e.RequestID] = e.Value
		case OpRevoke:
			l.Revoked[e.Value] = true
			if e.KeyID != "" {
				l.RevokedIDs[e.KeyID] = true
			}
		}
	}
	return l, sc.Err()
}
