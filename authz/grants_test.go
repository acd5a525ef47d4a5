package authz

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// grantsMarkdown is the README's table of grants, generated from grants.
func grantsMarkdown() string {
	var b strings.Builder
	b.WriteString("| role |")
	for _, a := range Actions {
		b.WriteString(" " + string(a) + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(Actions)) + "\n")
	for _, r := range Roles {
		b.WriteString("| `" + string(r) + "` |")
		for _, a := range Actions {
			if slices.Contains(grants[r], a) {
				b.WriteString(" ✓ |")
			} else {
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestGrantsREADME: the README's table of what each role may do is the
// one in the code. Before, the README said ci may read the audit log,
// which the API refuses.
func TestGrantsREADME(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := grantsMarkdown()
	if !strings.Contains(string(readme), "\n"+want+"\n") {
		t.Fatalf("README.md (Access control) must hold the table of grants as the code has it:\n\n%s", want)
	}
}

// TestGrantsPackageDoc: the package doc's table of roles is the one in
// the code: each ✓ stands under the action its role is granted.
func TestGrantsPackageDoc(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var header []rune
	got := map[Role][]Action{}
	for _, line := range strings.Split(string(doc), "\n") {
		row, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			continue
		}
		fields := strings.Fields(row)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "role" {
			header = []rune(row)
			continue
		}
		r, err := ParseRole(fields[0])
		if err != nil || header == nil {
			continue
		}
		got[r] = nil
		for i, c := range []rune(row) {
			if c != '✓' {
				continue
			}
			a := actionAt(header, i)
			if a == "" {
				t.Fatalf("doc.go: the ✓ of %s at column %d stands under no action", r, i)
			}
			got[r] = append(got[r], a)
		}
	}
	for _, r := range Roles {
		if g, ok := got[r]; !ok || !slices.Equal(g, grants[r]) {
			t.Errorf("doc.go: %s may %v; the code grants %v", r, g, grants[r])
		}
	}
}

// actionAt returns the action whose name in header covers column i, give
// or take the width of a ✓ centred under it.
func actionAt(header []rune, i int) Action {
	for _, a := range Actions {
		start := strings.Index(string(header), " "+string(a)+" ")
		if a == Actions[len(Actions)-1] {
			start = strings.LastIndex(string(header), " "+string(a))
		}
		if start < 0 {
			continue
		}
		start = len([]rune(string(header)[:start])) + 1
		if i >= start-1 && i <= start+len(a) {
			return a
		}
	}
	return ""
}
