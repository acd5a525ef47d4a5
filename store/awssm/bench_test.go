package awssm

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/store"
)

// valueBytes counts the secret value bytes GetSecretValue returns.
type valueBytes struct {
	api
	n atomic.Int64
}

func (v *valueBytes) GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, o ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	out, err := v.api.GetSecretValue(ctx, in, o...)
	if err == nil {
		v.n.Add(int64(len(aws.ToString(out.SecretString))))
	}
	return out, err
}

// BenchmarkPollUnchanged measures what one poll of an unchanged secret
// costs in Secrets Manager requests and secret value bytes: a full read
// (Load, what rotor serve's watch reader did before Version; LoadLabels,
// what an application's keyring did) against a version read (Version,
// LabelReader.Version). The secret has been rotated three times, so its
// state document holds current, previous and two retired keys. Requests
// and bytes per op are exact; ns/op times the emulator on loopback and
// means little (BENCHMARKS.md, "AWS Secrets Manager: polling without
// values").
func BenchmarkPollUnchanged(b *testing.B) {
	polls := []struct {
		name string
		poll func(ctx context.Context, st *Store) error
	}{
		{"Load", func(ctx context.Context, st *Store) error { _, _, err := st.Load(ctx, "k"); return err }},
		{"Version", func(ctx context.Context, st *Store) error { _, err := st.Version(ctx, "k"); return err }},
		{"LoadLabels", func(ctx context.Context, st *Store) error { _, _, err := st.LoadLabels(ctx, "k"); return err }},
		{"LabelVersion", func(ctx context.Context, st *Store) error { _, err := st.Labels().Version(ctx, "k"); return err }},
	}
	for _, p := range polls {
		b.Run(p.name, func(b *testing.B) {
			ctx := b.Context()
			srv := awsfake.Start(b, awsfake.Options{})
			vb := &valueBytes{api: srv.Client()}
			st := newStore(vb, Options{})
			s, v := &store.Secret{Name: "k", Current: key("c0")}, store.NoVersion
			var err error
			if v, err = st.Save(ctx, s, v); err != nil {
				b.Fatal(err)
			}
			for i := range 3 {
				beginRotation(fmt.Sprintf("20260301T12000%dZ-0000000%d", i, i))(s)
				s.Pending = key(fmt.Sprint("c", i+1))
				promote(s)
				finish(s)
				if v, err = st.Save(ctx, s, v); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.poll(ctx, st); err != nil { // warm: the state document is read once
				b.Fatal(err)
			}
			srv.ResetCalls()
			vb.n.Store(0)
			for b.Loop() {
				if err := p.poll(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(srv.Count("DescribeSecret", ""))/n, "DescribeSecret/op")
			b.ReportMetric(float64(srv.Count("GetSecretValue", ""))/n, "GetSecretValue/op")
			b.ReportMetric(float64(vb.n.Load())/n, "value-bytes/op")
		})
	}
}
