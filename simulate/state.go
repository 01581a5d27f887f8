package simulate

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// State is where a cycle is: when it started and the last step applied.
// A restarted simulator reads it and goes on from the step the clock is
// at; re-applying a step already applied changes nothing.
type State struct {
	// Start is when step 0 began.
	Start time.Time
	// Step is the last step applied, -1 before the first.
	Step int
	// Cycle is Cycle.String() of the cycle that wrote the state.
	Cycle string
}

// StateStore keeps the State between runs.
type StateStore interface {
	// Load returns the stored state; found is false when there is none.
	Load(ctx context.Context) (s State, found bool, err error)
	// Save stores s.
	Save(ctx context.Context, s State) error
}

// ConfigMap keys of the state.
const (
	stateKeyStart = "start"
	stateKeyStep  = "step"
	stateKeyCycle = "cycle"
)

// ConfigMapState keeps the State in one ConfigMap (the seed kept it in an
// SQS queue). It needs get and update on that ConfigMap, and create on
// configmaps in the namespace the first time (Kubernetes RBAC cannot
// limit create to a name).
type ConfigMapState struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string

	mu sync.Mutex
	cm *corev1.ConfigMap // last read or written, for optimistic updates
}

// Load implements StateStore. A ConfigMap whose data does not parse is an
// error naming the key: the simulator does not overwrite what it cannot
// read.
func (c *ConfigMapState) Load(ctx context.Context) (State, bool, error) {
	cm, err := c.Client.CoreV1().ConfigMaps(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return State{Step: -1}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("reading state configmap %s/%s: %w", c.Namespace, c.Name, err)
	}
	c.mu.Lock()
	c.cm = cm
	c.mu.Unlock()
	s, err := parseState(cm.Data)
	if err != nil {
		return State{}, false, fmt.Errorf("state configmap %s/%s: %w", c.Namespace, c.Name, err)
	}
	return s, true, nil
}

func parseState(data map[string]string) (State, error) {
	start, ok := data[stateKeyStart]
	if !ok {
		return State{}, fmt.Errorf("key %s: missing", stateKeyStart)
	}
	t, err := time.Parse(time.RFC3339Nano, start)
	if err != nil {
		return State{}, fmt.Errorf("key %s: %q is not an RFC 3339 time", stateKeyStart, start)
	}
	s := State{Start: t, Step: -1, Cycle: data[stateKeyCycle]}
	if v, ok := data[stateKeyStep]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 {
			return State{}, fmt.Errorf("key %s: %q is not a step number", stateKeyStep, v)
		}
		s.Step = n
	}
	return s, nil
}

func stateData(s State) map[string]string {
	return map[string]string{
		stateKeyStart: s.Start.UTC().Format(time.RFC3339Nano),
		stateKeyStep:  strconv.Itoa(s.Step),
		stateKeyCycle: s.Cycle,
	}
}

// Save implements StateStore: create when there is no ConfigMap yet,
// otherwise update the one read (on a conflict, read it again and update
// once more).
func (c *ConfigMapState) Save(ctx context.Context, s State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cms := c.Client.CoreV1().ConfigMaps(c.Namespace)
	for attempt := 0; ; attempt++ {
		if c.cm == nil {
			cm := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "zerodrop-simulate"}},
				Data: stateData(s),
			}
			created, err := cms.Create(ctx, cm, metav1.CreateOptions{})
			if err == nil {
				c.cm = created
				return nil
			}
			if !apierrors.IsAlreadyExists(err) || attempt > 0 {
				return fmt.Errorf("creating state configmap %s/%s: %w", c.Namespace, c.Name, err)
			}
		} else {
			cm := c.cm.DeepCopy()
			cm.Data = stateData(s)
			updated, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
			if err == nil {
				c.cm = updated
				return nil
			}
			if !apierrors.IsConflict(err) || attempt > 0 {
				return fmt.Errorf("updating state configmap %s/%s: %w", c.Namespace, c.Name, err)
			}
		}
		// Someone else wrote it: read it again and write over it once.
		cur, err := cms.Get(ctx, c.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			c.cm = nil
		case err != nil:
			return fmt.Errorf("reading state configmap %s/%s: %w", c.Namespace, c.Name, err)
		default:
			c.cm = cur
		}
	}
}

// MemoryState is a StateStore in memory (nothing survives the process).
type MemoryState struct {
	mu    sync.Mutex
	s     State
	found bool
}

// Load implements StateStore.
func (m *MemoryState) Load(context.Context) (State, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.found {
		return State{Step: -1}, false, nil
	}
	return m.s, true, nil
}

// Save implements StateStore.
func (m *MemoryState) Save(_ context.Context, s State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s, m.found = s, true
	return nil
}
