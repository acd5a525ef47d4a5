package dynamochain_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
	"github.com/rotor-dev/rotor/audit/dynamochain"
	"github.com/rotor-dev/rotor/internal/dynamofake"
)

// srv is the emulator every test of the package shares; tests keep apart
// by prefix. Child processes started by the tests reach it through the
// environment.
var srv *dynamofake.Server

const (
	childEnv  = "ROTOR_DYNAMOCHAIN_CHILD"
	addrEnv   = "ROTOR_DYNAMOCHAIN_ADDR"
	prefixEnv = "ROTOR_DYNAMOCHAIN_PREFIX"
	seedEnv   = "ROTOR_DYNAMOCHAIN_SEED"
	table     = "rotor-audit"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(m.Run())
	}
	s, stop := dynamofake.New()
	s.CreateTable(table, "pk")
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func newClient(url string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

func newBackend(t *testing.T, c *dynamodb.Client, prefix string) *dynamochain.Backend {
	t.Helper()
	b, err := dynamochain.New(dynamochain.Options{Client: c, Table: table, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newShared(t *testing.T, b audit.Backend) *audit.Shared {
	t.Helper()
	s, err := audit.NewShared(b, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func event(who string, i int) audit.Event {
	return audit.Event{Initiator: who, Action: "rotate.promote", Secret: "clerk", Status: audit.StatusSucceeded, Detail: fmt.Sprintf("%s#%d", who, i)}
}

func TestConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Backend {
		return newBackend(t, newClient(srv.URL()), uniqueName("rotortest/"))
	})
}

// TestTamperWithoutSalt rewrites a record item with PutItem, as an IAM
// principal that may write the table but does not hold the salt would:
// the chain no longer verifies.
func TestTamperWithoutSalt(t *testing.T) {
	prefix := uniqueName("rotortest/")
	c := newClient(srv.URL())
	s := newShared(t, newBackend(t, c, prefix))
	for i := range 3 {
		if _, err := s.Append(t.Context(), event("user:ana", i)); err != nil {
			t.Fatal(err)
		}
	}
	key := &types.AttributeValueMemberS{Value: prefix + "/records/2"}
	out, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": key}})
	if err != nil || out.Item == nil {
		t.Fatalf("records/2: %v", err)
	}
	v := out.Item["v"].(*types.AttributeValueMemberB).Value
	out.Item["v"] = &types.AttributeValueMemberB{Value: bytes.Replace(v, []byte("user:ana"), []byte("user:eve"), 1)}
	if _, err := c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: out.Item}); err != nil {
		t.Fatal(err)
	}
	_, err = newShared(t, newBackend(t, c, prefix)).Verify(t.Context())
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || !strings.Contains(ce.Reason, "modified or forged") {
		t.Fatalf("Verify after the forgery = %v, want a forged record at seq 2", err)
	}
}

// TestServiceDownFailsAppend: with DynamoDB unreachable an append fails
// (so the operation it announces does not happen), and works again after.
func TestServiceDownFailsAppend(t *testing.T) {
	s := newShared(t, newBackend(t, newClient(srv.URL()), uniqueName("rotortest/")))
	srv.SetDown(true)
	_, err := s.Append(t.Context(), event("user:ana", 0))
	srv.SetDown(false)
	if err == nil {
		t.Fatal("Append with DynamoDB down succeeded")
	}
	if _, err := s.Append(t.Context(), event("user:ana", 1)); err != nil {
		t.Fatalf("Append once DynamoDB is back: %v", err)
	}
	if rep, err := s.Verify(t.Context()); err != nil || rep.Records != 1 {
		t.Fatalf("Verify = %+v, %v; want one record", rep, err)
	}
}

// TestProcessesAppendConcurrently runs three processes, each appending
// with its own chain value, released at once: the result is one gap-free
// chain holding every event once, each process's in order.
func TestProcessesAppendConcurrently(t *testing.T) {
	if childAppend(t) {
		return
	}
	const procs, each = 3, 15
	prefix := uniqueName("rotortest/")
	var (
		wg    sync.WaitGroup
		gates []io.Closer
	)
	for p := range procs {
		cmd := child(t, "TestProcessesAppendConcurrently", fmt.Sprintf("p%d", p), prefix, each)
		gate, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		gates = append(gates, gate)
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				t.Errorf("child %d: %v\n%s", p, err, out.String())
			}
		})
	}
	// Every child waits for its stdin to close: closing them together
	// releases them together, so their appends overlap.
	for _, g := range gates {
		g.Close()
	}
	wg.Wait()
	s := newShared(t, newBackend(t, newClient(srv.URL()), prefix))
	rep, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != procs*each || rep.Anchored != rep.Records {
		t.Fatalf("Verify = %+v, want %d records, the head at the last", rep, procs*each)
	}
	checkEvents(t, s, nil)
}

// checkEvents checks that the chain holds every event at most once and
// each writer's in order, and that it holds every event in want.
func checkEvents(t *testing.T, s *audit.Shared, want map[string]bool) {
	t.Helper()
	recs, err := s.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	last := map[string]int{}
	for _, r := range recs {
		who, n, ok := strings.Cut(r.Detail, "#")
		i, err := strconv.Atoi(n)
		if !ok || err != nil {
			continue
		}
		if found[r.Detail] {
			t.Fatalf("%q is in the chain twice", r.Detail)
		}
		found[r.Detail] = true
		if prev, seen := last[who]; seen && i <= prev {
			t.Fatalf("%q follows #%d of the same writer", r.Detail, prev)
		}
		last[who] = i
	}
	for e := range want {
		if !found[e] {
			t.Errorf("acknowledged event %q is not in the chain", e)
		}
	}
}

func child(t *testing.T, test, id, prefix string, n int) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+id, addrEnv+"="+srv.URL(), prefixEnv+"="+prefix, "ROTOR_DYNAMOCHAIN_N="+strconv.Itoa(n))
	return cmd
}

// childAppend is the child side of the process tests: it waits for its
// stdin to close, then appends n events, printing "ack <detail>" after
// each Append returns.
func childAppend(t *testing.T) bool {
	id := os.Getenv(childEnv)
	if id == "" {
		return false
	}
	s := newShared(t, newBackend(t, newClient(os.Getenv(addrEnv)), os.Getenv(prefixEnv)))
	n, _ := strconv.Atoi(os.Getenv("ROTOR_DYNAMOCHAIN_N"))
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := event(id, i)
		if _, err := s.Append(t.Context(), e); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if _, err := os.Stdout.WriteString("ack " + e.Detail + "\n"); err != nil {
			return true
		}
	}
	return true
}

// TestWriterKilledMidAppend kills appending processes with SIGKILL at
// seeded random moments: the chain still verifies, holds every
// acknowledged event, and the next append continues it.
func TestWriterKilledMidAppend(t *testing.T) {
	if childAppend(t) {
		return
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (%s=%d replays it)", seed, seedEnv, seed)
	rng := mrand.New(mrand.NewPCG(seed, 0))
	prefix := uniqueName("rotortest/")
	acked := map[string]bool{}
	for round := range 3 {
		cmd := child(t, "TestWriterKilledMidAppend", fmt.Sprintf("r%d", round), prefix, 200)
		cmd.Stdin = strings.NewReader("")
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 1 + rng.IntN(30)
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			a, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				continue
			}
			acked[a] = true
			if n++; n == killAt {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = cmd.Wait()
		if rep, err := newShared(t, newBackend(t, newClient(srv.URL()), prefix)).Verify(t.Context()); err != nil {
			t.Fatalf("round %d: Verify after the kill: %v (%+v)", round, err, rep)
		}
	}
	s := newShared(t, newBackend(t, newClient(srv.URL()), prefix))
	last, err := s.Append(t.Context(), event("after", 0))
	if err != nil {
		t.Fatalf("Append after the kills: %v", err)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || rep.Records != last.Seq || rep.Anchored != last.Seq {
		t.Fatalf("Verify = %+v, %v; want %d records, the head at the last", rep, err, last.Seq)
	}
	checkEvents(t, s, acked)
}

// TestCreateTable: a chain whose table is missing fails its first append
// with ErrNoTable, before writing anything; CreateTable creates the table
// on demand with the key the chain needs, waits until DynamoDB says it is
// ACTIVE, and is a no-op when it exists; a table with another key is
// refused. The emulator follows API_CreateTable.html and
// API_DescribeTable.html (see internal/dynamofake).
func TestCreateTable(t *testing.T) {
	s := dynamofake.Start(t)
	s.SetCreatingPolls(1) // the table is CREATING when first described
	c := newClient(s.URL())
	b := newBackend(t, c, "rotor")
	sh := newShared(t, b)
	if _, err := sh.Append(t.Context(), event("ci", 0)); !errors.Is(err, dynamochain.ErrNoTable) || !strings.Contains(err.Error(), "table "+table) {
		t.Fatalf("Append without the table = %v, want ErrNoTable naming %s", err, table)
	}
	created, err := b.CreateTable(t.Context())
	if err != nil || !created {
		t.Fatalf("CreateTable = %v, %v; want the table created", created, err)
	}
	d, err := c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Table.TableStatus != types.TableStatusActive || d.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("after CreateTable the table is %s, %s; want ACTIVE, PAY_PER_REQUEST", d.Table.TableStatus, d.Table.BillingModeSummary.BillingMode)
	}
	if created, err := b.CreateTable(t.Context()); err != nil || created {
		t.Fatalf("CreateTable of an existing table = %v, %v; want no change", created, err)
	}
	if _, err := sh.Append(t.Context(), event("ci", 0)); err != nil {
		t.Fatal(err)
	}
	if rep, err := sh.Verify(t.Context()); err != nil || rep.Records != 1 {
		t.Fatalf("Verify = %+v, %v; want the one record", rep, err)
	}

	s.CreateTable("other", "id")
	o, err := dynamochain.New(dynamochain.Options{Client: c, Table: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.CreateTable(t.Context()); err == nil || !strings.Contains(err.Error(), "[id HASH]") {
		t.Fatalf("CreateTable of a table keyed by id = %v, want an error naming its key", err)
	}
}
