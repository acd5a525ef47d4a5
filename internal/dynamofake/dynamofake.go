// Package dynamofake is an in-memory Amazon DynamoDB for tests, limited to
// what the shared audit chain calls (package audit/dynamochain). It speaks
// the service's wire protocol so that the real aws-sdk-go-v2 DynamoDB
// client runs unchanged against it.
//
// # Protocol
//
// Every request is a POST to / with X-Amz-Target:
// DynamoDB_20120810.<Operation> and Content-Type:
// application/x-amz-json-1.0 (AWS JSON 1.0), signed with Signature
// Version 4 for service dynamodb (the signature is not verified). Errors
// are HTTP 400 responses with a body {"__type":
// "com.amazonaws.dynamodb.v20120810#<Error>", "message": ...}, which the
// SDK turns into its typed errors.
//
// # Behaviour
//
// As the DynamoDB API reference documents them
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/):
//
//   - GetItem (API_GetItem.html) returns the item with the given primary
//     key, or a response without Item when there is none;
//   - PutItem (API_PutItem.html) replaces the whole item; with a
//     ConditionExpression that evaluates to false it changes nothing and
//     fails with ConditionalCheckFailedException;
//   - condition expressions (Expressions.ConditionExpressions.html): this
//     emulator evaluates attribute_not_exists(path) and path = :value, with
//     #name placeholders from ExpressionAttributeNames and :value ones from
//     ExpressionAttributeValues, and refuses every other expression with a
//     ValidationException rather than guess;
//   - an item larger than 400 KB is refused with a ValidationException
//     (ServiceQuotas.html, "Item size"); sizes are counted as attribute
//     names plus values, as the quota page describes;
//   - an unknown table is a ResourceNotFoundException.
//
// Tables are created by [Server.CreateTable] with one string partition
// key; there are no sort keys, indexes, streams or capacity limits.
// Operations on one table are serialised, which DynamoDB's conditional
// writes guarantee per item.
package dynamofake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Server is the emulator.
type Server struct {
	mu     sync.Mutex
	tables map[string]*table
	// Down, when set, makes every request fail with a 500 (tests of an
	// unreachable service).
	down bool
	url  string
}

type table struct {
	key   string
	items map[string]map[string]attr
}

// attr is one attribute value as the wire carries it: exactly one of S, N
// or B.
type attr struct {
	S *string `json:"S,omitempty"`
	N *string `json:"N,omitempty"`
	B *string `json:"B,omitempty"` // base64
}

func (a attr) equal(b attr) bool {
	eq := func(x, y *string) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.S, b.S) && eq(a.N, b.N) && eq(a.B, b.B)
}

func (a attr) size() int {
	switch {
	case a.S != nil:
		return len(*a.S)
	case a.N != nil:
		return len(*a.N)
	case a.B != nil:
		n, _ := base64.StdEncoding.DecodeString(*a.B)
		return len(n)
	}
	return 0
}

// Start runs the emulator on loopback for tb and stops it in Cleanup.
func Start(tb testing.TB) *Server {
	s, stop := New()
	tb.Cleanup(stop)
	return s
}

// New runs the emulator on loopback, for a TestMain; stop stops it.
func New() (s *Server, stop func()) {
	s = &Server{tables: map[string]*table{}}
	hs := httptest.NewServer(s)
	s.url = hs.URL
	return s, hs.Close
}

// URL is the endpoint to give the SDK client.
func (s *Server) URL() string { return s.url }

// CreateTable adds a table whose partition key is the string attribute
// key.
func (s *Server) CreateTable(name, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[name] = &table{key: key, items: map[string]map[string]attr{}}
}

// SetDown makes the service unreachable (500 to every request) or
// reachable again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

type apiError struct{ typ, msg string }

const (
	errConditional = "ConditionalCheckFailedException"
	errNotFound    = "ResourceNotFoundException"
	errValidation  = "ValidationException"
	errUnknownOp   = "UnknownOperationException"
	maxItemSize    = 400 * 1024
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "service unavailable", http.StatusInternalServerError)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if r.Method != http.MethodPost || !ok || !strings.Contains(r.Header.Get("Authorization"), "/dynamodb/aws4_request") {
		writeErr(w, &apiError{errUnknownOp, "not a signed DynamoDB JSON 1.0 request"})
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeErr(w, &apiError{errValidation, err.Error()})
		return
	}
	var out any
	var aerr *apiError
	switch op {
	case "GetItem":
		out, aerr = s.getItem(body)
	case "PutItem":
		out, aerr = s.putItem(body)
	default:
		aerr = &apiError{errUnknownOp, "unsupported operation " + op}
	}
	if aerr != nil {
		writeErr(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + e.typ, "message": e.msg})
}

func (s *Server) lookup(name string) (*table, *apiError) {
	t := s.tables[name]
	if t == nil {
		return nil, &apiError{errNotFound, "Requested resource not found: Table: " + name + " not found"}
	}
	return t, nil
}

func (t *table) keyOf(item map[string]attr) (string, *apiError) {
	k, ok := item[t.key]
	if !ok || k.S == nil || len(item) == 0 {
		return "", &apiError{errValidation, "One or more parameter values were invalid: Missing the key " + t.key + " in the item"}
	}
	return *k.S, nil
}

func (s *Server) getItem(body []byte) (any, *apiError) {
	var req struct {
		TableName      string
		Key            map[string]attr
		ConsistentRead bool
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &apiError{errValidation, err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookup(req.TableName)
	if aerr != nil {
		return nil, aerr
	}
	k, aerr := t.keyOf(req.Key)
	if aerr != nil {
		return nil, aerr
	}
	if item, ok := t.items[k]; ok {
		return map[string]any{"Item": item}, nil
	}
	return map[string]any{}, nil
}

var (
	notExists = regexp.MustCompile(`^\s*attribute_not_exists\s*\(\s*(#?[A-Za-z0-9_]+)\s*\)\s*$`)
	equals    = regexp.MustCompile(`^\s*(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)\s*$`)
)

func (s *Server) putItem(body []byte) (any, *apiError) {
	var req struct {
		TableName                 string
		Item                      map[string]attr
		ConditionExpression       string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]attr
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &apiError{errValidation, err.Error()}
	}
	size := 0
	for name, a := range req.Item {
		size += len(name) + a.size()
	}
	if size > maxItemSize {
		return nil, &apiError{errValidation, "Item size has exceeded the maximum allowed size"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookup(req.TableName)
	if aerr != nil {
		return nil, aerr
	}
	k, aerr := t.keyOf(req.Item)
	if aerr != nil {
		return nil, aerr
	}
	if c := req.ConditionExpression; c != "" {
		ok, aerr := evaluate(c, t.items[k], req.ExpressionAttributeNames, req.ExpressionAttributeValues)
		if aerr != nil {
			return nil, aerr
		}
		if !ok {
			return nil, &apiError{errConditional, "The conditional request failed"}
		}
	}
	t.items[k] = req.Item
	return map[string]any{}, nil
}

// evaluate evaluates the condition expressions this emulator supports
// against item (nil when there is none).
func evaluate(expr string, item map[string]attr, names map[string]string, values map[string]attr) (bool, *apiError) {
	name := func(p string) (string, *apiError) {
		if !strings.HasPrefix(p, "#") {
			return p, nil
		}
		n, ok := names[p]
		if !ok {
			return "", &apiError{errValidation, "An expression attribute name used in the document path is not defined; attribute name: " + p}
		}
		return n, nil
	}
	if m := notExists.FindStringSubmatch(expr); m != nil {
		n, aerr := name(m[1])
		if aerr != nil {
			return false, aerr
		}
		_, exists := item[n]
		return !exists, nil
	}
	if m := equals.FindStringSubmatch(expr); m != nil {
		n, aerr := name(m[1])
		if aerr != nil {
			return false, aerr
		}
		v, ok := values[m[2]]
		if !ok {
			return false, &apiError{errValidation, "An expression attribute value used in expression is not defined; attribute value: " + m[2]}
		}
		a, exists := item[n]
		return exists && a.equal(v), nil
	}
	return false, &apiError{errValidation, fmt.Sprintf("this emulator does not evaluate the condition expression %q", expr)}
}
