package crd

import (
	"context"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testCRD(name string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// Install waits for the Established condition the API server sets, and
// leaves an existing CRD alone.
func TestInstallWaitsUntilEstablished(t *testing.T) {
	existing := testCRD("olds.example.com")
	existing.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
	cs := fake.NewSimpleClientset(existing)
	ctx := context.Background()
	go func() { // the API server establishes the new CRD a little later
		time.Sleep(300 * time.Millisecond)
		c, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "news.example.com", metav1.GetOptions{})
		if err != nil {
			return
		}
		c.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
		_, _ = cs.ApiextensionsV1().CustomResourceDefinitions().UpdateStatus(ctx, c, metav1.UpdateOptions{})
	}()
	if err := InstallWith(ctx, cs, testCRD("olds.example.com"), testCRD("news.example.com")); err != nil {
		t.Fatal(err)
	}
	got, _ := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "news.example.com", metav1.GetOptions{})
	if !Established(got) {
		t.Fatal("Install returned before the CRD was established")
	}
}

func TestInstallStopsWithContext(t *testing.T) {
	cs := fake.NewSimpleClientset()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := InstallWith(ctx, cs, testCRD("nevers.example.com"))
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err %v, want the context's deadline", err)
	}
}
