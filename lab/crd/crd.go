// Package crd installs CustomResourceDefinitions into the lab's API
// server and waits until they serve, as a cluster's add-on installers do
// before their controllers start.
package crd

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// EstablishTimeout bounds the wait for a CRD to be established.
const EstablishTimeout = 30 * time.Second

// Install creates each CRD (one that exists already is left as it is) and
// waits until every one is Established, at most EstablishTimeout.
func Install(ctx context.Context, cfg *rest.Config, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	cs, err := apiextensions.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	return InstallWith(ctx, cs, crds...)
}

// InstallWith is Install with a client of one's own (a fake in tests).
func InstallWith(ctx context.Context, cs apiextensions.Interface, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	for _, c := range crds {
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, c.DeepCopy(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("installing the %s CRD: %w", c.Name, err)
		}
	}
	deadline := time.Now().Add(EstablishTimeout)
	for _, c := range crds {
		for {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, c.Name, metav1.GetOptions{})
			if err == nil && Established(got) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after %s: %v", c.Name, EstablishTimeout, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Established reports whether the API server serves the CRD.
func Established(c *apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
