package kubernetes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rotor-dev/rotor/store"
)

// These tests use client-go's fake clientset: no API server can run here.
// They prove the request rotor sends (the strategic merge patch of the pod
// template annotation, as kubectl rollout restart sends it) and the
// rollout-status logic; the fake does not run the Deployment controller,
// so each test plays the controller by updating the status.

func deployment(replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"team": "auth"}}},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas, AvailableReplicas: replicas},
	}
}

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// controller plays the API server and the Deployment controller: a patch
// of the spec bumps metadata.generation (as the API server does), and each
// Get reports the next of the given status steps.
func controller(cs *fake.Clientset, steps ...appsv1.DeploymentStatus) {
	apply := k8stesting.ObjectReaction(cs.Tracker())
	cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		_, obj, err := apply(a)
		if err != nil {
			return true, nil, err
		}
		d := obj.(*appsv1.Deployment).DeepCopy()
		d.Generation = 2
		return true, d, cs.Tracker().Update(appsv1.SchemeGroupVersion.WithResource("deployments"), d, "prod")
	})
	i := 0
	cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj, err := cs.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("deployments"), "prod", "web")
		if err != nil {
			return true, nil, err
		}
		d := obj.(*appsv1.Deployment).DeepCopy()
		d.Generation = 2
		if i < len(steps) {
			d.Status = steps[i]
			i++
		} else if len(steps) > 0 {
			d.Status = steps[len(steps)-1]
		}
		return true, d, nil
	})
}

func TestRolloutRestartPatchesAnnotationAndWaits(t *testing.T) {
	cs := fake.NewClientset(deployment(3))
	controller(cs,
		appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
		appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3},
		appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3},
		appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
	)
	r := &Rollout{Client: cs, Namespace: "prod", Deployment: "web", Interval: time.Millisecond, Timeout: time.Minute, Now: func() time.Time { return fixedNow }}
	if err := r.Reload(t.Context(), &store.Secret{Name: "clerk-secret-key"}); err != nil {
		t.Fatal(err)
	}
	var patch, gets int
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "patch":
			patch++
			p := string(a.(k8stesting.PatchAction).GetPatch())
			if !strings.Contains(p, `"kubectl.kubernetes.io/restartedAt":"2026-11-25T12:00:00Z"`) || !strings.Contains(p, `"template"`) {
				t.Fatalf("patch = %s", p)
			}
		case "get":
			gets++
		}
	}
	if patch != 1 || gets < 4 {
		t.Fatalf("%d patches and %d status reads, want 1 and at least 4 (returned before the rollout finished?)", patch, gets)
	}
	obj, _ := cs.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("deployments"), "prod", "web")
	ann := obj.(*appsv1.Deployment).Spec.Template.Annotations
	if ann[RestartedAtAnnotation] != "2026-11-25T12:00:00Z" || ann["team"] != "auth" {
		t.Fatalf("pod template annotations = %v, want restartedAt added and the rest kept", ann)
	}
}

// TestRolloutTimesOut runs in a synctest bubble, so its clock moves only
// when every goroutine waits: the polls and the timeout happen in the same
// order however busy the machine is.
func TestRolloutTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cs := fake.NewClientset(deployment(2))
		controller(cs, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2})
		r := &Rollout{Client: cs, Namespace: "prod", Deployment: "web", Interval: time.Millisecond, Timeout: 30 * time.Millisecond}
		err := r.Reload(context.Background(), &store.Secret{})
		if err == nil || !strings.Contains(err.Error(), "not complete after 30ms") || !strings.Contains(err.Error(), "1 of 2 replicas updated") {
			t.Fatalf("err = %v, want a timeout saying how far the rollout got", err)
		}
	})
}

func TestRolloutProgressDeadlineFails(t *testing.T) {
	cs := fake.NewClientset(deployment(2))
	controller(cs, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "web-2" has timed out progressing.`},
	}})
	r := &Rollout{Client: cs, Namespace: "prod", Deployment: "web", Interval: time.Millisecond, Timeout: time.Minute}
	err := r.Reload(context.Background(), &store.Secret{})
	if err == nil || !strings.Contains(err.Error(), "progress deadline exceeded") {
		t.Fatalf("err = %v, want the progress deadline failure", err)
	}
}

func TestRolloutMissingDeployment(t *testing.T) {
	cs := fake.NewClientset()
	r := &Rollout{Client: cs, Namespace: "prod", Deployment: "web"}
	if err := r.Reload(context.Background(), &store.Secret{}); err == nil || !strings.Contains(err.Error(), "restart deployment prod/web") {
		t.Fatalf("err = %v", err)
	}
}

// TestNew builds a Rollout from Options and a kubeconfig file; building a
// client does not contact the cluster.
func TestNew(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Deployment: "web", Kubeconfig: "kubeconfig"}.ResolvePaths(dir)
	if o.Kubeconfig != filepath.Join(dir, "kubeconfig") {
		t.Fatalf("ResolvePaths: kubeconfig %q, want it under %s", o.Kubeconfig, dir)
	}
	r, err := New(o, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r.Namespace != DefaultNamespace || r.Deployment != "web" || r.Timeout != time.Minute {
		t.Errorf("rollout of %s/%s within %s, want default/web within 1m", r.Namespace, r.Deployment, r.Timeout)
	}
	if _, err := New(Options{Kubeconfig: o.Kubeconfig}, 0); err == nil || !strings.Contains(err.Error(), "deployment: deployment is required") {
		t.Errorf("New without a deployment = %v, want the deployment reported", err)
	}
}
