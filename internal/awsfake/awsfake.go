// Package awsfake is an in-memory AWS Secrets Manager for tests. It speaks
// the service's wire protocol (AWS JSON 1.1 over HTTP) so that the real
// aws-sdk-go-v2 client, and therefore the code under test, runs unchanged
// against it.
//
// # Protocol
//
// Every request is a POST to / with X-Amz-Target:
// secretsmanager.<Operation> and Content-Type: application/x-amz-json-1.1.
// A request must carry an AWS Signature Version 4 Authorization header for
// service secretsmanager; the signature itself is not verified. Errors are
// HTTP 400 responses with a body {"__type": "<ErrorType>", "message": ...}
// and an X-Amzn-ErrorType header, which the SDK turns into its typed errors
// (*types.ResourceNotFoundException and so on). Timestamps are epoch seconds.
//
// # Behaviour
//
// The operations rotor calls are implemented as the Secrets Manager API
// reference documents them: CreateSecret, DescribeSecret, GetSecretValue,
// ListSecrets, ListSecretVersionIds, PutSecretValue and
// UpdateSecretVersionStage. The tests of this package cite the reference
// page of each behaviour they check. In short:
//
//   - a staging label is attached to at most one version of a secret;
//   - whenever AWSCURRENT moves, AWSPREVIOUS moves to the version it left;
//   - PutSecretValue without VersionStages makes the new version
//     AWSCURRENT, and the first version of a secret is always AWSCURRENT;
//   - the ClientRequestToken becomes the VersionId; repeating it with the
//     same value does nothing, with another value fails with
//     ResourceExistsException;
//   - a version without labels is deprecated: DescribeSecret and, unless
//     IncludeDeprecated is set, ListSecretVersionIds leave it out, and it
//     is removed once the secret has more than 100 versions and it is more
//     than 24 hours old;
//   - an unknown secret, version or staging label is a
//     ResourceNotFoundException.
//
// Where the reference is silent the emulator picks the strict reading and
// says so in a comment. It does not model deletion, replication, rotation
// Lambdas, resource policies or IAM: every request is authorised. ListSecrets
// supports the name filter only and rejects other filter keys.
package awsfake

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Defaults of [Options].
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "123456789012"
)

// Options configures a [Server].
type Options struct {
	Region  string           // region in ARNs; default us-east-1
	Account string           // account id in ARNs; default 123456789012
	Now     func() time.Time // clock; default time.Now
}

// Call is one request the server answered, for tests that count calls.
type Call struct {
	Operation string // e.g. PutSecretValue
	Secret    string // the secret's name (resolved from an ARN), if any
}

// Server is an in-memory Secrets Manager. It is safe for concurrent use;
// every request is applied atomically under one lock, so the server is
// strongly consistent (real Secrets Manager is eventually consistent for
// some reads, e.g. ListSecrets).
type Server struct {
	region, account string
	now             func() time.Time

	mu      sync.Mutex
	secrets map[string]*secret // by name
	seq     int                // creation order of secrets and versions
	calls   []Call

	url string
}

// New returns a server with no secrets. Serve it with any http.Server, or
// use [Start].
func New(o Options) *Server {
	s := &Server{region: o.Region, account: o.Account, now: o.Now, secrets: map[string]*secret{}}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.account == "" {
		s.account = DefaultAccount
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// TB is the part of testing.TB that [Start] uses. Taking it instead of
// testing.TB keeps the testing package out of programs that run the
// emulator with [StartMain] (rotor-bench).
type TB interface {
	Helper()
	Cleanup(func())
}

// Start serves a new server on a loopback port until tb's cleanup.
func Start(tb TB, o Options) *Server {
	tb.Helper()
	s, stop := StartMain(o)
	tb.Cleanup(stop)
	return s
}

// StartMain serves a new server on a loopback port, where there is no
// testing.TB (a TestMain, a program); stop stops it.
func StartMain(o Options) (s *Server, stop func()) {
	s = New(o)
	ts := httptest.NewServer(s)
	s.url = ts.URL
	return s, ts.Close
}

// URL is the endpoint of a server made by [Start] or [StartMain].
func (s *Server) URL() string { return s.url }

// Region is the region the server claims to be in.
func (s *Server) Region() string { return s.region }

// Client returns a real SDK client for a server made by [Start] or
// [StartMain], with static fake credentials and the server's region. It
// reads nothing from the environment or ~/.aws.
func (s *Server) Client() *secretsmanager.Client {
	return NewClient(s.url, s.region)
}

// NewClient returns an SDK client for the emulator at endpoint.
func NewClient(endpoint, region string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAWSFAKE", "awsfake-secret-access-key", ""),
	})
}

// Calls returns the requests answered so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Count returns how many op requests were answered for the secret called
// name ("" counts all of them).
func (s *Server) Count(op, name string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Operation == op && (name == "" || c.Secret == name) {
			n++
		}
	}
	return n
}

// ResetCalls forgets the requests answered so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// apiError is an error response of the Secrets Manager API.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func errorf(typ, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typ, msg: fmt.Sprintf(format, args...)}
}

// Error types, as named in the API reference.
const (
	errNotFound      = "ResourceNotFoundException"
	errExists        = "ResourceExistsException"
	errInvalidParam  = "InvalidParameterException"
	errInvalidReq    = "InvalidRequestException"
	errInvalidToken  = "InvalidNextTokenException"
	errUnknownOp     = "UnknownOperationException"
	errSerialization = "SerializationException"
	errSignature     = "IncompleteSignature"
)

type handler func(s *Server, body []byte) (secretName string, out any, err *apiError)

var operations = map[string]handler{
	"CreateSecret":             (*Server).createSecret,
	"DescribeSecret":           (*Server).describeSecret,
	"GetSecretValue":           (*Server).getSecretValue,
	"ListSecrets":              (*Server).listSecrets,
	"ListSecretVersionIds":     (*Server).listSecretVersionIds,
	"PutSecretValue":           (*Server).putSecretValue,
	"UpdateSecretVersionStage": (*Server).updateSecretVersionStage,
}

// maxBody bounds a request body; a secret value is at most 64 KiB.
const maxBody = 1 << 20

// ServeHTTP answers one Secrets Manager API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", newUUID())
	op, err := s.check(r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, rerr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if rerr != nil || len(body) > maxBody {
		writeError(w, errorf(errSerialization, "cannot read the request body"))
		return
	}
	s.mu.Lock()
	name, out, aerr := operations[op](s, body)
	s.calls = append(s.calls, Call{Operation: op, Secret: name})
	s.mu.Unlock()
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	b, jerr := json.Marshal(out)
	if jerr != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, typ: "InternalServiceError", msg: "cannot encode the response"})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
}

// check validates the protocol envelope and returns the operation.
func (s *Server) check(r *http.Request) (string, *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return "", errorf(errUnknownOp, "only POST / is served")
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	if _, known := operations[op]; !ok || !known {
		return "", errorf(errUnknownOp, "unknown or unsupported operation %q", r.Header.Get("X-Amz-Target"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		return "", errorf(errSerialization, "Content-Type must be application/x-amz-json-1.1, got %q", ct)
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/"+s.region+"/secretsmanager/aws4_request") {
		return "", errorf(errSignature, "the request must be signed with SigV4 for secretsmanager in %s", s.region)
	}
	return op, nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	b, _ := json.Marshal(map[string]string{"__type": e.typ, "message": e.msg})
	w.Write(b)
}

// decode unmarshals a request body into v.
func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(errSerialization, "malformed request body")
	}
	return nil
}

// epoch is a timestamp written as epoch seconds, as AWS JSON 1.1 does.
type epoch time.Time

// MarshalJSON writes the time as fractional seconds since the epoch.
func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

func ptime(t time.Time) *epoch {
	e := epoch(t)
	return &e
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// suffixChars are the characters of the random suffix of a secret's ARN.
const suffixChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func arnSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = suffixChars[int(b[i])%len(suffixChars)]
	}
	return string(b[:])
}

// pageSize validates MaxResults (1-100, as the API reference states for
// both list operations) and returns the page size.
func pageSize(max *int32) (int, *apiError) {
	if max == nil {
		return 100, nil
	}
	if *max < 1 || *max > 100 {
		return 0, errorf(errInvalidParam, "MaxResults must be between 1 and 100")
	}
	return int(*max), nil
}

// pageStart decodes a NextToken issued by page.
func pageStart(token *string, n int) (int, *apiError) {
	if token == nil {
		return 0, nil
	}
	i, err := strconv.Atoi(strings.TrimPrefix(*token, "awsfake-"))
	if err != nil || !strings.HasPrefix(*token, "awsfake-") || i < 0 || i > n {
		return 0, errorf(errInvalidToken, "the NextToken value is invalid")
	}
	return i, nil
}

// page returns the bounds of one page and the token of the next, if any.
func page(start, size, n int) (int, int, *string) {
	end := min(start+size, n)
	if end < n {
		t := "awsfake-" + strconv.Itoa(end)
		return start, end, &t
	}
	return start, end, nil
}
