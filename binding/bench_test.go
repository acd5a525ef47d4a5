package binding_test

import (
	"fmt"
	"testing"

	"github.com/rotor-dev/rotor/audit"
)

// BenchmarkLoad measures a load checked against a local audit log of
// 100, 1k and 10k records (one save record in ten, the rest other events):
// as a one-shot command makes it (a new binding, which reads the whole
// log) and as serve or the daemon make it (the same binding, which reads
// only what was appended since: here one record). The file store's own
// Load (decrypting the age file) is in both.
//
//	go test ./binding -run '^$' -bench Load -benchtime 50x
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			f := newFixture(b, logChain(b))
			app := f.app()
			noise := func() {
				if _, err := app.Append(b.Context(), audit.Event{Initiator: "user:ana", Action: "noise", Status: audit.StatusSucceeded}); err != nil {
					b.Fatal(err)
				}
			}
			saves := n / 10
			saveKeys(b, f.bind(b), 0, saves)
			for range n - saves {
				noise()
			}
			b.Run("first-load", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := f.bind(b).Load(b.Context(), secretName); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("next-load", func(b *testing.B) {
				bound := f.bind(b)
				for b.Loop() {
					b.StopTimer()
					noise()
					b.StartTimer()
					if _, _, err := bound.Load(b.Context(), secretName); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
