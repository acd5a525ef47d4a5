package audit

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// queryRecords appends 12 records: secrets a and b, initiators user:ana,
// user:bob and ci:github:acme, one day apart from fixedTime on.
func queryLog(t *testing.T) testLog {
	t.Helper()
	day := 0
	l := newTestLog(t, WithClock(func() time.Time {
		day++
		return fixedTime().Add(time.Duration(day-1) * 24 * time.Hour)
	}))
	initiators := []string{"user:ana", "user:bob", "ci:github:acme/app:rotate#1"}
	for i := range 12 {
		e := event(i)
		e.Secret = []string{"a", "b"}[i%2]
		e.Initiator = initiators[i%3]
		e.Detail = fmt.Sprint(i)
		if _, err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestQuery(t *testing.T) {
	l := queryLog(t)
	day := func(d int) time.Time { return fixedTime().Add(time.Duration(d) * 24 * time.Hour) }
	tests := []struct {
		name string
		f    Filter
		n    int
		want []uint64 // seqs
	}{
		{"everything", Filter{}, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"last three", Filter{}, 3, []uint64{10, 11, 12}},
		{"secret", Filter{Secret: "b"}, 0, []uint64{2, 4, 6, 8, 10, 12}},
		{"secret is exact", Filter{Secret: "a2"}, 0, nil},
		{"since", Filter{Since: day(9)}, 0, []uint64{10, 11, 12}},
		{"since is inclusive", Filter{Since: day(11)}, 0, []uint64{12}},
		{"initiator prefix", Filter{Initiator: "ci:github:"}, 0, []uint64{3, 6, 9, 12}},
		{"all together", Filter{Secret: "a", Since: day(3), Initiator: "user:"}, 0, []uint64{5, 7, 11}},
		{"all together, last one", Filter{Secret: "a", Since: day(3), Initiator: "user:"}, 1, []uint64{11}},
	}
	shared, err := NewShared(newMemBackend(), testSalt)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		shared.now = func() time.Time { return r.Timestamp }
		if _, err := shared.Append(t.Context(), r.Event); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for what, q := range map[string]func() ([]Record, error){
				"log":    func() ([]Record, error) { return l.Query(t.Context(), tt.f, tt.n) },
				"shared": func() ([]Record, error) { return shared.Query(t.Context(), tt.f, tt.n) },
			} {
				got, err := q()
				if err != nil {
					t.Fatalf("%s: Query: %v", what, err)
				}
				if !slices.Equal(seqsOf(got), tt.want) {
					t.Errorf("%s: Query(%+v, %d) = seqs %v, want %v", what, tt.f, tt.n, seqsOf(got), tt.want)
				}
				for _, r := range got {
					if !tt.f.Match(r) {
						t.Errorf("%s: record %d does not match the filter it was returned for", what, r.Seq)
					}
				}
			}
		})
	}
}
