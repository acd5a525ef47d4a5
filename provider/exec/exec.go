// Package exec is a provider implemented by an external command, for
// credentials rotor has no built-in provider for.
//
// # Protocol (version 2)
//
// For every operation rotor runs the configured command once, without a
// shell, and writes one JSON request to its stdin:
//
//	{"version":2,"action":"mint","secret":"db-password","request_id":"20261101T120000Z-3f2a9c1d-mint-0b8e7f6a",
//	 "value":"…","key_id":"…","meta":{…},"grace_seconds":86400}
//
// action is mint, test or revoke. For mint, request_id identifies the
// request (see below), value, key_id and meta describe the credential being
// replaced (absent on first issue) and grace_seconds says how long it must
// stay valid; for test, value is the candidate; for revoke, value, key_id
// and meta describe the key to revoke. The command answers with one JSON
// object on stdout and exit status 0:
//
//	{"version":2,"value":"…","meta":{"issuer_id":"…"}}   mint succeeded
//	{"version":2}                                      test or revoke succeeded
//	{"version":2,"error":"password too short","rejected":true}
//
// rejected:true means the issuer gave a definite no (the test of a bad
// credential); the error then wraps [provider.ErrRejected]. An error without
// rejected is an unknown answer the engine may retry. Revoke must succeed
// for a credential that is already revoked.
//
// # Mint is idempotent on request_id
//
// rotor saves request_id before it runs a mint, and a run that died before
// saving the answer runs the mint again with the same request_id. The
// command must then answer with the credential it minted for that id the
// first time, without minting another: that is how rotor learns a key it
// would otherwise lose at the issuer (keep the answer in a file named by
// the request id, or ask the issuer for the credential tagged with it). An
// answer with "error" to a mint promises that the command created nothing
// ([provider.ErrNotMinted]), so rotor ends the rotation; a non-zero exit, a
// timeout or bad JSON leaves that unknown, and rotor asks again with the
// same request_id on its next run.
//
// Version 1 had no request_id: a command that answers "version":1 is
// refused with a message saying what changed.
//
// Decoding is strict: unknown fields, a version other than 2, trailing data,
// a value in a test or revoke answer, or a secret inside meta are protocol
// errors. A non-zero exit, a timeout ([Options] Timeout, default 30s) or bad
// JSON is an error naming the command and the action; it quotes the start of
// stderr with known values redacted and never quotes stdout.
//
// The command inherits rotor's environment plus ROTOR_SECRET, ROTOR_ACTION,
// ROTOR_KEY_ID and, for mint, ROTOR_REQUEST_ID. Secret values are only ever
// on stdin.
package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// ProtocolVersion is the version of the JSON protocol this package speaks.
const ProtocolVersion = 2

// The actions of the protocol.
const (
	ActionMint   = "mint"
	ActionTest   = "test"
	ActionRevoke = "revoke"
)

// Request is what rotor writes to the command's stdin.
type Request struct {
	Version      int               `json:"version"`
	Action       string            `json:"action"`
	Secret       string            `json:"secret"`
	RequestID    string            `json:"request_id,omitempty"`
	Value        string            `json:"value,omitempty"`
	KeyID        string            `json:"key_id,omitempty"`
	Meta         map[string]string `json:"meta,omitempty"`
	GraceSeconds int64             `json:"grace_seconds,omitempty"`
}

// Response is what the command prints on stdout.
type Response struct {
	Version  int               `json:"version"`
	Value    string            `json:"value,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
	Error    string            `json:"error,omitempty"`
	Rejected bool              `json:"rejected,omitempty"`
}

// Options says which command implements the provider.
type Options struct {
	// Command is the program and its arguments, run without a shell. See
	// [Options.ResolvePaths] for relative program paths.
	Command []string
	// Timeout bounds one run; default [DefaultTimeout].
	Timeout time.Duration
}

// WithDefaults returns o with its empty fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Validate reports every problem of o as a [field.List].
func (o Options) Validate() error {
	var errs field.List
	if len(o.Command) == 0 || o.Command[0] == "" {
		errs.Addf(field.NewPath("command"), "command is required")
	}
	if o.Timeout < 0 {
		errs.Addf(field.NewPath("timeout"), "must not be negative")
	}
	return errs.Err()
}

// ResolvePaths returns o with its program resolved against dir (see
// [ResolveProgram]).
func (o Options) ResolvePaths(dir string) Options {
	o.Command = ResolveProgram(dir, o.Command)
	return o
}

// ResolveProgram returns argv with a program given as a relative path with
// a directory part (./bin/rotate) made relative to dir, the directory of
// the configuration that names it. A bare name is left alone: it is looked
// up in PATH when the command runs. argv itself is not modified.
func ResolveProgram(dir string, argv []string) []string {
	if len(argv) == 0 {
		return argv
	}
	prog := argv[0]
	if filepath.IsAbs(prog) || !strings.ContainsRune(prog, filepath.Separator) {
		return argv
	}
	out := append([]string(nil), argv...)
	out[0] = filepath.Join(dir, prog)
	return out
}

// Provider runs a command for every mint, test and revoke.
type Provider struct {
	secret string
	cmd    Command
}

var (
	_ provider.Provider         = (*Provider)(nil)
	_ provider.IdempotentMinter = (*Provider)(nil)
)

// New returns the provider of the secret called secret, running the
// command o names.
func New(secret string, o Options) (*Provider, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	return &Provider{
		secret: secret,
		cmd:    Command{Argv: o.Command, Timeout: o.Timeout},
	}, nil
}

// Mint asks the command for the credential of req.RequestID: a new one,
// or the one it minted for that id before.
func (p *Provider) Mint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	r := Request{Action: ActionMint, RequestID: req.RequestID, GraceSeconds: int64(req.Grace / time.Second)}
	if c := req.Current; c != nil {
		r.Value, r.KeyID, r.Meta = c.Value, c.ID, c.Meta
	}
	resp, err := p.call(ctx, r)
	if err != nil {
		return provider.Credential{}, err
	}
	return provider.Credential{Value: resp.Value, Meta: resp.Meta}, nil
}

// IdempotentMint reports true: the protocol requires a command to answer a
// mint request id it has seen with the credential it minted for it.
func (p *Provider) IdempotentMint() bool { return true }

// Test asks the command whether value works.
func (p *Provider) Test(ctx context.Context, value string) error {
	_, err := p.call(ctx, Request{Action: ActionTest, Value: value})
	return err
}

// Revoke asks the command to revoke key; the command must treat an
// already revoked key as success.
func (p *Provider) Revoke(ctx context.Context, key store.Key) error {
	_, err := p.call(ctx, Request{Action: ActionRevoke, Value: key.Value, KeyID: key.ID, Meta: key.Meta})
	return err
}

func (p *Provider) call(ctx context.Context, r Request) (*Response, error) {
	r.Version, r.Secret = ProtocolVersion, p.secret
	in, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("exec: %s: encode request: %w", r.Action, err)
	}
	cmd := p.cmd
	cmd.Env = []string{"ROTOR_SECRET=" + p.secret, "ROTOR_ACTION=" + r.Action}
	if r.KeyID != "" {
		cmd.Env = append(cmd.Env, "ROTOR_KEY_ID="+r.KeyID)
	}
	if r.RequestID != "" {
		cmd.Env = append(cmd.Env, "ROTOR_REQUEST_ID="+r.RequestID)
	}
	redact := []string{r.Value}
	for _, v := range r.Meta {
		redact = append(redact, v)
	}
	out, err := cmd.Run(ctx, in, redact...)
	if err != nil {
		return nil, fmt.Errorf("exec: %s: %w", r.Action, err)
	}
	resp, err := decodeResponse(out, r.Action, r.Value)
	if err != nil {
		return nil, fmt.Errorf("exec: %s: command %s: %w", r.Action, cmd.Name(), err)
	}
	if resp.Error != "" || resp.Rejected {
		msg := redactText(resp.Error, []string{r.Value}, 300)
		if msg == "" {
			msg = "no reason given"
		}
		if resp.Rejected {
			return nil, fmt.Errorf("exec: %s: command %s: %s: %w", r.Action, cmd.Name(), msg, provider.ErrRejected)
		}
		if r.Action == ActionMint {
			// The protocol: an error answer to mint created nothing.
			return nil, fmt.Errorf("exec: %s: command %s failed: %s: %w", r.Action, cmd.Name(), msg, provider.ErrNotMinted)
		}
		return nil, fmt.Errorf("exec: %s: command %s failed: %s", r.Action, cmd.Name(), msg)
	}
	return resp, nil
}

// Limits on what a response may carry.
const (
	maxMeta       = 32
	maxMetaKey    = 64
	maxMetaValue  = 1024
	maxErrorField = 4096
)

// decodeResponse parses the command's stdout for action strictly. sent is
// the value rotor sent in the request. Its errors never quote the input
// beyond a field name of the protocol's shape.
func decodeResponse(b []byte, action, sent string) (*Response, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Response
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("invalid response: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid response: more than one JSON value on stdout")
	}
	switch {
	case r.Version == 0:
		return nil, errors.New("invalid response: no version (want \"version\":2)")
	case r.Version == 1:
		return nil, errors.New("invalid response: protocol version 1; rotor speaks version 2 (mint requests carry a request_id; see the provider/exec docs)")
	case r.Version != ProtocolVersion:
		return nil, fmt.Errorf("invalid response: unsupported protocol version %d (want %d)", r.Version, ProtocolVersion)
	case len(r.Error) > maxErrorField:
		return nil, errors.New("invalid response: error longer than 4096 bytes")
	}
	failed := r.Error != "" || r.Rejected
	switch {
	case failed && r.Value != "":
		return nil, errors.New("invalid response: both a value and an error")
	case failed:
		return &r, nil
	case action == ActionMint && r.Value == "":
		return nil, errors.New("invalid response: mint answered without a value")
	case action != ActionMint && r.Value != "":
		return nil, fmt.Errorf("invalid response: a %s answer must not carry a value", action)
	}
	if len(r.Meta) > maxMeta {
		return nil, fmt.Errorf("invalid response: more than %d meta entries", maxMeta)
	}
	for k, v := range r.Meta {
		if !metaKey.MatchString(k) {
			return nil, errors.New("invalid response: meta keys must be 1-64 characters of [A-Za-z0-9_.-]")
		}
		if len(v) > maxMetaValue {
			return nil, fmt.Errorf("invalid response: meta %q longer than %d bytes", k, maxMetaValue)
		}
		for _, secret := range []string{r.Value, sent} {
			if len(secret) >= minRedactLen && strings.Contains(v, secret) {
				// Meta is stored and shown in the clear.
				return nil, fmt.Errorf("invalid response: meta %q contains the secret value", k)
			}
		}
	}
	return &r, nil
}

var (
	metaKey   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	fieldName = regexp.MustCompile(`^[a-z_]{1,32}$`)
)

// describeJSONError explains a decoding error without quoting the input:
// encoding/json quotes offending characters and unknown field names, and
// either could be part of a secret.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty stdout (want one JSON object)"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON (syntax error at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		// Value is "number 42" for numbers: keep the kind only.
		got, _, _ := strings.Cut(typ.Value, " ")
		if typ.Field == "" {
			return fmt.Sprintf("want a JSON object, got %s", got)
		}
		if !fieldName.MatchString(typ.Field) {
			return fmt.Sprintf("a field has the wrong type (got %s)", got)
		}
		return fmt.Sprintf("field %q has the wrong type (got %s, want %s)", typ.Field, got, typ.Type)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		if fieldName.MatchString(name) {
			return fmt.Sprintf("unknown field %q", name)
		}
		return "unknown field"
	}
	return "not valid JSON"
}
