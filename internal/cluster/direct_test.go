package cluster

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestRecordsDirect(t *testing.T) {
	t.Parallel()
	marker := func(data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: MarkerNamespace, Name: MarkerName}, Data: data}
	}
	ctx := context.Background()
	if !RecordsDirect(ctx, fake.NewClientset(marker(map[string]string{markerDirect: directMarkerValue()}))) {
		t.Error("a marker with the mapping: not recorded")
	}
	if RecordsDirect(ctx, fake.NewClientset(marker(map[string]string{"workers": "0"}))) {
		t.Error("a marker without the mapping: recorded")
	}
	if RecordsDirect(ctx, fake.NewClientset()) {
		t.Error("no marker: recorded")
	}
}
