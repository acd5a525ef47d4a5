package file

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

// BenchmarkSave saves one secret in a directory holding n other entries:
// half of them other secrets' files, half unrelated files (a backup, an
// editor's swap file). A save touches its own secret's files only, so the
// cost per save should not grow with n (BENCHMARKS.md, "Scale"). It
// reports the process's CPU time per save (cpu-ns/op) besides the wall
// time, which is mostly fsyncs.
//
//	go test -run XXX -bench Save -benchtime 200x ./store/file
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			root := b.TempDir()
			identity := filepath.Join(root, "identity.txt")
			if err := GenerateIdentity(identity); err != nil {
				b.Fatal(err)
			}
			dir := filepath.Join(root, "store")
			st, err := New(dir, identity)
			if err != nil {
				b.Fatal(err)
			}
			v, err := st.Save(b.Context(), testSecret("bench"), store.NoVersion)
			if err != nil {
				b.Fatal(err)
			}
			// Other secrets: copies of the encrypted file under other
			// names (no secret is ever read here, so the mismatch
			// between file name and content does not matter).
			blob, err := os.ReadFile(filepath.Join(dir, secretFile("bench")))
			if err != nil {
				b.Fatal(err)
			}
			for i := range n / 2 {
				if err := os.WriteFile(filepath.Join(dir, secretFile(fmt.Sprintf("other-%05d", i))), blob, 0o600); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("unrelated-%05d.bak", i)), nil, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			sec := testSecret("bench")
			b.ReportAllocs()
			cpu0, cpuOK := processCPU()
			b.ResetTimer()
			for b.Loop() {
				if v, err = st.Save(b.Context(), sec, v); err != nil {
					b.Fatal(err)
				}
			}
			// The time per save is mostly fsyncs, which wait for the
			// disk; the CPU a save costs is what bounds throughput on a
			// busy machine.
			if cpu1, ok := processCPU(); cpuOK && ok {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
