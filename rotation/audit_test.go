package rotation

import (
	"slices"
	"testing"
)

func TestAuditDetailRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"outside an operation", Event{Detail: "nothing to roll back to"}, "nothing to roll back to"},
		{"step", Event{Op: "20261101T120000Z-ab12", Detail: "pending key minted"}, "[op 20261101T120000Z-ab12] pending key minted"},
		{"terminal", Event{Op: "20261101T120000Z-ab12", End: EndAborted, Detail: "set aside"}, "[op 20261101T120000Z-ab12 ended: aborted] set aside"},
		{"terminal without detail", Event{Op: "x", End: EndRecovered}, "[op x ended: recovered]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.ev.AuditDetail()
			if got != tc.want {
				t.Fatalf("AuditDetail = %q, want %q", got, tc.want)
			}
			op, end, rest, ok := ParseAuditDetail(got)
			if ok != (tc.ev.Op != "") || op != tc.ev.Op || end != tc.ev.End || rest != tc.ev.Detail {
				t.Fatalf("ParseAuditDetail(%q) = %q %q %q %v", got, op, end, rest, ok)
			}
		})
	}
}

func TestParseAuditDetailRejectsLookalikes(t *testing.T) {
	for _, d := range []string{"[op ] x", "[op a b] x", "[op a ended: maybe] x", "[opx] y", "op a] x", "[op a"} {
		if op, _, rest, ok := ParseAuditDetail(d); ok || rest != d {
			t.Errorf("ParseAuditDetail(%q) = op %q ok %v, want no operation and the detail unchanged", d, op, ok)
		}
	}
}

func TestOpenOperations(t *testing.T) {
	rec := func(secret, action, status string, ev Event) AuditRecord {
		return AuditRecord{Action: action, Secret: secret, Status: status, Detail: ev.AuditDetail()}
	}
	records := []AuditRecord{
		rec("a", "rotate.start", StatusStarted, Event{Op: "r1"}),
		rec("a", "rotate.create", StatusSucceeded, Event{Op: "r1"}),
		rec("b", "revoke", StatusStarted, Event{Op: "v1"}),
		rec("b", "stage", StatusFailed, Event{Detail: "refused"}),
		rec("a", "rotate.finish", StatusSucceeded, Event{Op: "r1", End: EndSucceeded}),
		rec("a", "rotate.start", StatusStarted, Event{Op: "r2"}),
		rec("a", "rotate.test", StatusFailed, Event{Op: "r2"}),
		rec("b", "revoke", StatusSucceeded, Event{Op: "v1", End: EndSucceeded}),
		rec("b", "revoke", StatusSucceeded, Event{Op: "v1", End: EndRecovered}),
		rec("c", "stage", StatusSucceeded, Event{Op: "s1", End: EndRecovered}),
	}
	open := OpenOperations(records)
	var ids []string
	for _, o := range open {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, []string{"r2"}) {
		t.Fatalf("open operations = %v, want [r2]", ids)
	}
	if o := open[0]; o.Secret != "a" || o.First.Action != "rotate.start" || o.Last.Action != "rotate.test" {
		t.Fatalf("open operation = %+v", o)
	}
}

// FuzzParseAuditDetail: audit records are read back from a log that may
// have been tampered with; parsing never panics and what it accepts
// formats back to itself.
func FuzzParseAuditDetail(f *testing.F) {
	for _, s := range []string{"", "x", "[op a] b", "[op a ended: failed] b", "[op a ended: x] b", "[op ]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		op, end, rest, ok := ParseAuditDetail(d)
		if !ok {
			if rest != d {
				t.Fatalf("rejected detail changed: %q -> %q", d, rest)
			}
			return
		}
		again := Event{Op: op, End: end, Detail: rest}.AuditDetail()
		op2, end2, rest2, ok2 := ParseAuditDetail(again)
		if !ok2 || op2 != op || end2 != end || rest2 != rest {
			t.Fatalf("%q parsed to %q %q %q, which formats to %q and parses differently", d, op, end, rest, again)
		}
	})
}
