package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/internal/vaulttest"
)

// costKind is one kind of request rotor sends Vault, issued n times
// apart from rotor to measure the server's CPU time per request.
type costKind struct {
	name string
	// workers is how many send at once: 16 as `rotor rotate --due` does,
	// 1 where rotor's requests of this kind are serialised (the head).
	workers int
	// do sends request i, on secret (the KV kinds), which only the one
	// worker sending it writes.
	do func(ctx context.Context, kv *api.Logical, secret string, i int) error
}

// costRow is the Vault CPU time one request of a kind cost.
type costRow struct {
	name    string
	n       int
	perCall time.Duration
}

// costPathsPerWorker is the number of secrets each worker of a KV kind
// spreads its requests over.
const costPathsPerWorker = 6

// costKinds are the requests of a rotation, with payloads of the sizes
// rotor sends: a secret version of about 2 KB, a metadata patch with a
// 1 KB state and a history line, audit batches of about 3 KB.
func costKinds(prefix string) []costKind {
	data := func(secret string) string { return "secret/data/" + prefix + "/" + secret }
	blob := strings.Repeat("x", 1500)
	key := strings.Repeat("k", 40)
	versions := map[string]uint64{}
	var vmu sync.Mutex
	batch := strings.Repeat("r", 3000)
	var headV uint64
	return []costKind{
		{name: "KV data write (cas)", workers: 16, do: func(ctx context.Context, kv *api.Logical, secret string, _ int) error {
			vmu.Lock()
			cas := versions[secret]
			vmu.Unlock()
			res, err := kv.WriteWithContext(ctx, data(secret), map[string]any{
				"data":    map[string]any{"rotor": blob, "current": key, "previous": key, "current_key_id": "0123456789abcdef", "rotor_format": "1", "written_by": "system:rotor-bench"},
				"options": map[string]any{"cas": cas},
			})
			if err != nil {
				return err
			}
			v, err := strconv.ParseUint(fmt.Sprint(res.Data["version"]), 10, 64)
			vmu.Lock()
			versions[secret] = v
			vmu.Unlock()
			return err
		}},
		{name: "KV metadata patch", workers: 16, do: func(ctx context.Context, kv *api.Logical, secret string, i int) error {
			md := map[string]any{"rotor_version": strconv.Itoa(i), "rotor_state": strings.Repeat("s", 512), "rotor_state_1": strings.Repeat("s", 400)}
			for c := 2; c < 8; c++ {
				md["rotor_state_"+strconv.Itoa(c)] = nil
			}
			md["rotor_v"+strconv.Itoa(i%50)] = `{"c":"0123456789abcdef","p":"fedcba9876543210","s":"finish","w":"system:rotor-bench"}`
			_, err := kv.JSONMergePatch(ctx, "secret/metadata/"+prefix+"/"+secret, map[string]any{"max_versions": 100, "custom_metadata": md})
			return err
		}},
		{name: "KV data read", workers: 16, do: func(ctx context.Context, kv *api.Logical, secret string, _ int) error {
			_, err := kv.ReadWithContext(ctx, data(secret))
			return err
		}},
		{name: "audit chain batch write (create)", workers: 16, do: func(ctx context.Context, kv *api.Logical, _ string, i int) error {
			_, err := kv.WriteWithContext(ctx, fmt.Sprintf("secret/data/%s/_audit/records/%d", prefix, i+1), map[string]any{
				"data": map[string]any{"v": batch}, "options": map[string]any{"cas": 0},
			})
			return err
		}},
		{name: "audit chain head write (cas)", workers: 1, do: func(ctx context.Context, kv *api.Logical, _ string, i int) error {
			res, err := kv.WriteWithContext(ctx, fmt.Sprintf("secret/data/%s/_audit/head", prefix), map[string]any{
				"data": map[string]any{"v": `{"seq":` + strconv.Itoa(i) + `,"hash":"` + strings.Repeat("h", 64) + `","batch":1,"mac":"` + strings.Repeat("m", 64) + `"}`}, "options": map[string]any{"cas": headV},
			})
			if err != nil {
				return err
			}
			headV, err = strconv.ParseUint(fmt.Sprint(res.Data["version"]), 10, 64)
			return err
		}},
		{name: "audit chain head read", workers: 16, do: func(ctx context.Context, kv *api.Logical, _ string, _ int) error {
			_, err := kv.ReadWithContext(ctx, fmt.Sprintf("secret/data/%s/_audit/head", prefix))
			return err
		}},
	}
}

// vaultCost sends n requests of each kind and returns the Vault server's
// CPU time per request, measured from /proc around each kind.
func vaultCost(ctx context.Context, vault *vaulttest.Server, n int) ([]costRow, error) {
	cfg := api.DefaultConfig()
	cfg.Address = vault.Addr
	if t, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = 64
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(vault.Token)
	kv := c.Logical()
	var rows []costRow
	for _, k := range costKinds(fmt.Sprintf("cost-%d", time.Now().UnixNano())) {
		before, err := vaultCPU(vault)
		if err != nil {
			return nil, err
		}
		errs := make(chan error, k.workers)
		var wg sync.WaitGroup
		for w := range k.workers {
			wg.Go(func() {
				for j, i := 0, w; i < n; j, i = j+1, i+k.workers {
					secret := fmt.Sprintf("s%02d-%d", w, j%costPathsPerWorker)
					if err := k.do(ctx, kv, secret, i); err != nil {
						errs <- fmt.Errorf("%s: %w", k.name, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		after, err := vaultCPU(vault)
		if err != nil {
			return nil, err
		}
		rows = append(rows, costRow{name: k.name, n: n, perCall: (after - before) / time.Duration(n)})
	}
	return rows, nil
}

func reportCost(w io.Writer, rows []costRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "request kind\trequests\tVault CPU per request")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r.name, r.n, r.perCall.Round(time.Microsecond))
	}
	tw.Flush()
}
