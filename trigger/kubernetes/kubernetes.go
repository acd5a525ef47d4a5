// Package kubernetes restarts a Deployment after a rotation, the way
// `kubectl rollout restart` does, and waits for the rollout to finish, so
// that rotor's verify step runs against pods that started with the new key.
//
// The restart patches the pod template's kubectl.kubernetes.io/restartedAt
// annotation; the Deployment controller then replaces the pods under the
// Deployment's own rollout strategy (maxUnavailable/maxSurge), which is what
// keeps the restart itself free of downtime. The wait follows the same rules
// as `kubectl rollout status`: the controller has observed the new
// generation, every replica is updated and available, and no old replica is
// left; a Progressing condition with reason ProgressDeadlineExceeded fails
// at once.
//
// It is in its own package so that only programs that restart Kubernetes
// workloads link client-go.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// RestartedAtAnnotation is the pod template annotation kubectl sets.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// Rollout restarts one Deployment and waits for it.
type Rollout struct {
	Client     k8s.Interface
	Namespace  string
	Deployment string
	Timeout    time.Duration    // how long to wait for the rollout; default 5m
	Interval   time.Duration    // polling interval; default 2s
	Now        func() time.Time // default time.Now
}

var _ rotation.Reloader = (*Rollout)(nil)

// DefaultNamespace is the namespace of a Deployment when [Options] names
// none.
const DefaultNamespace = "default"

// Options names the Deployment to restart and how to reach its cluster.
type Options struct {
	// Namespace is the Deployment's namespace; default [DefaultNamespace].
	Namespace string
	// Deployment is the name of the Deployment; required.
	Deployment string
	// Kubeconfig is a kubeconfig file; default the in-cluster service
	// account, else $KUBECONFIG / ~/.kube/config.
	Kubeconfig string
}

// WithDefaults returns o with its empty fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	return o
}

// Validate reports every problem of o as a [field.List].
func (o Options) Validate() error {
	var errs field.List
	if o.Deployment == "" {
		errs.Addf(field.NewPath("deployment"), "deployment is required")
	}
	return errs.Err()
}

// ResolvePaths returns o with a relative Kubeconfig made relative to dir.
func (o Options) ResolvePaths(dir string) Options {
	if o.Kubeconfig != "" && !filepath.IsAbs(o.Kubeconfig) {
		o.Kubeconfig = filepath.Join(dir, o.Kubeconfig)
	}
	return o
}

// New builds a Rollout for the Deployment o names, waiting up to timeout
// (zero: 5m) for its rollout. It reaches the cluster through the
// kubeconfig o names, else the in-cluster service account, else the
// default kubeconfig rules ($KUBECONFIG, ~/.kube/config).
func New(o Options, timeout time.Duration) (*Rollout, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	rc, err := restConfig(o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return &Rollout{Client: cs, Namespace: o.Namespace, Deployment: o.Deployment, Timeout: timeout}, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if rc, err := rest.InClusterConfig(); err == nil {
		return rc, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// Reload restarts the Deployment and waits until its rollout completes.
func (r *Rollout) Reload(ctx context.Context, _ *store.Secret) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{RestartedAtAnnotation: now().UTC().Format(time.RFC3339)}},
	}}})
	deployments := r.Client.AppsV1().Deployments(r.Namespace)
	d, err := deployments.Patch(ctx, r.Deployment, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "rotor"})
	if err != nil {
		return fmt.Errorf("restart deployment %s/%s: %w", r.Namespace, r.Deployment, err)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	interval := r.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	gen := d.Generation
	for {
		done, why, err := rolledOut(d, gen)
		if err != nil {
			return fmt.Errorf("rollout of %s/%s: %w", r.Namespace, r.Deployment, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rollout of %s/%s not complete after %s: %s", r.Namespace, r.Deployment, timeout, why)
		case <-t.C:
		}
		if d, err = deployments.Get(ctx, r.Deployment, metav1.GetOptions{}); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("rollout of %s/%s not complete after %s: %s", r.Namespace, r.Deployment, timeout, why)
			}
			return fmt.Errorf("rollout of %s/%s: %w", r.Namespace, r.Deployment, err)
		}
	}
}

// rolledOut reports whether the rollout of generation gen is complete, and
// if not, why.
func rolledOut(d *appsv1.Deployment, gen int64) (bool, string, error) {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, "", errors.New("progress deadline exceeded: " + c.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < gen:
		return false, "waiting for the controller to observe the restart", nil
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want), nil
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas), nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas), nil
	}
	return true, "", nil
}
