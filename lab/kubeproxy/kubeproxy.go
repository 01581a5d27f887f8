// Package kubeproxy is the lab's kube-proxy twin for NodePort Services:
// on every node's address it listens on each NodePort and relays each TCP
// connection to one endpoint of the Service chosen at random, as kube-proxy's
// iptables rules do (per connection, connection tracking keeps it there).
// Only what the AWS Load Balancer Controller's instance mode needs: the
// extra hop from the node to the pod, with its own failure modes — an
// endpoint list that lags the pods, and connections cut when their pod goes.
package kubeproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"zerodrop.dev/zerodrop/lab/labevent"
)

// DefaultSyncPeriod is kube-proxy's --iptables-min-sync-period: changes
// are applied at most this often, so endpoint changes reach the node's
// rules up to this late.
const DefaultSyncPeriod = time.Second

// Proxy runs the NodePort listeners of every node it is told about.
type Proxy struct {
	// SyncPeriod is the minimum time between two rule syncs (set before
	// Run; DefaultSyncPeriod when zero).
	SyncPeriod time.Duration

	client  kubernetes.Interface
	events  labevent.Sink
	log     *slog.Logger
	factory informers.SharedInformerFactory
	kick    chan struct{}

	mu        sync.Mutex
	nodes     map[string]netip.Addr          // node name -> address
	listeners map[string]*listener           // nodeIP:nodePort -> listener
	endpoints map[string]map[string][]string // ns/svc -> port name -> ready ip:port (by node for Local: below)
	local     map[string]map[string]map[string][]string
}

type listener struct {
	ln     net.Listener
	node   string
	svc    string // ns/name
	port   string // service port name
	policy corev1.ServiceExternalTrafficPolicy
}

// New makes a proxy; Run starts it.
func New(client kubernetes.Interface, events labevent.Sink, log *slog.Logger) *Proxy {
	return &Proxy{
		client: client, events: events, log: log, kick: make(chan struct{}, 1),
		nodes: map[string]netip.Addr{}, listeners: map[string]*listener{},
		endpoints: map[string]map[string][]string{}, local: map[string]map[string]map[string][]string{},
	}
}

// AddNode starts proxying on a node's address.
func (p *Proxy) AddNode(name string, addr netip.Addr) {
	p.mu.Lock()
	p.nodes[name] = addr
	p.mu.Unlock()
	p.queue()
}

// RemoveNode stops proxying on a node (the node was lost or removed).
func (p *Proxy) RemoveNode(name string) {
	p.mu.Lock()
	delete(p.nodes, name)
	for key, l := range p.listeners {
		if l.node == name {
			l.ln.Close()
			delete(p.listeners, key)
		}
	}
	p.mu.Unlock()
}

func (p *Proxy) queue() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run watches Services and EndpointSlices until ctx ends.
func (p *Proxy) Run(ctx context.Context) {
	p.factory = informers.NewSharedInformerFactory(p.client, 0)
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { p.queue() }, UpdateFunc: func(_, _ any) { p.queue() }, DeleteFunc: func(any) { p.queue() }}
	_, _ = p.factory.Core().V1().Services().Informer().AddEventHandler(h)
	_, _ = p.factory.Discovery().V1().EndpointSlices().Informer().AddEventHandler(h)
	p.factory.Start(ctx.Done())
	p.factory.WaitForCacheSync(ctx.Done())
	defer func() {
		p.mu.Lock()
		for _, l := range p.listeners {
			l.ln.Close()
		}
		p.mu.Unlock()
		p.factory.Shutdown()
	}()
	if p.SyncPeriod == 0 {
		p.SyncPeriod = DefaultSyncPeriod
	}
	last := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		// At most one sync per period, as kube-proxy's rate limiter does.
		if wait := p.SyncPeriod - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		p.sync(ctx)
	}
}

func (p *Proxy) sync(ctx context.Context) {
	svcs, _ := p.factory.Core().V1().Services().Lister().List(labels.Everything())
	slices, _ := p.factory.Discovery().V1().EndpointSlices().Lister().List(labels.Everything())
	eps := map[string]map[string][]string{}
	local := map[string]map[string]map[string][]string{}
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range slices {
		bySvc[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]] = append(bySvc[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]], s)
	}
	for key, list := range bySvc {
		eps[key], local[key] = readyEndpoints(list)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endpoints, p.local = eps, local
	want := map[string]*listener{}
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeNodePort && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, sp := range s.Spec.Ports {
			if sp.NodePort == 0 || sp.Protocol != corev1.ProtocolTCP {
				continue
			}
			for node, addr := range p.nodes {
				key := net.JoinHostPort(addr.String(), strconv.Itoa(int(sp.NodePort)))
				want[key] = &listener{node: node, svc: s.Namespace + "/" + s.Name, port: sp.Name, policy: s.Spec.ExternalTrafficPolicy}
			}
		}
	}
	for key, l := range p.listeners {
		if w, ok := want[key]; !ok || w.svc != l.svc || w.port != l.port {
			l.ln.Close()
			delete(p.listeners, key)
		} else {
			l.policy = w.policy
		}
	}
	for key, w := range want {
		if _, ok := p.listeners[key]; ok {
			continue
		}
		ln, err := net.Listen("tcp", key)
		if err != nil {
			p.log.Warn("kube-proxy twin: listening", "addr", key, "err", err)
			continue
		}
		w.ln = ln
		p.listeners[key] = w
		go p.serve(ctx, w)
	}
}

// readyEndpoints returns the endpoints kube-proxy sends to, by port name,
// overall and by node: ready ones, or — when a Service has none —
// serving terminating ones (kube-proxy's terminating-endpoints fallback).
func readyEndpoints(slices []*discoveryv1.EndpointSlice) (map[string][]string, map[string]map[string][]string) {
	ready, serving := map[string][]string{}, map[string][]string{}
	readyLocal, servingLocal := map[string]map[string][]string{}, map[string]map[string][]string{}
	add := func(m map[string][]string, ml map[string]map[string][]string, port, addr, node string) {
		m[port] = append(m[port], addr)
		if ml[node] == nil {
			ml[node] = map[string][]string{}
		}
		ml[node][port] = append(ml[node][port], addr)
	}
	for _, s := range slices {
		for _, port := range s.Ports {
			if port.Port == nil {
				continue
			}
			name := ""
			if port.Name != nil {
				name = *port.Name
			}
			for _, e := range s.Endpoints {
				if len(e.Addresses) == 0 {
					continue
				}
				node := ""
				if e.NodeName != nil {
					node = *e.NodeName
				}
				addr := net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(*port.Port)))
				switch {
				case e.Conditions.Ready == nil || *e.Conditions.Ready:
					add(ready, readyLocal, name, addr, node)
				case e.Conditions.Serving != nil && *e.Conditions.Serving && e.Conditions.Terminating != nil && *e.Conditions.Terminating:
					add(serving, servingLocal, name, addr, node)
				}
			}
		}
	}
	for port, list := range serving {
		if len(ready[port]) == 0 {
			ready[port] = list
		}
	}
	for node, ports := range servingLocal {
		for port, list := range ports {
			if readyLocal[node] == nil {
				readyLocal[node] = map[string][]string{}
			}
			if len(readyLocal[node][port]) == 0 {
				readyLocal[node][port] = list
			}
		}
	}
	return ready, readyLocal
}

func (p *Proxy) pick(l *listener) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.endpoints[l.svc][l.port]
	if l.policy == corev1.ServiceExternalTrafficPolicyLocal {
		list = p.local[l.svc][l.node][l.port]
	}
	if len(list) == 0 {
		return "", fmt.Errorf("no endpoint for %s port %q", l.svc, l.port)
	}
	return list[rand.IntN(len(list))], nil
}

func (p *Proxy) serve(ctx context.Context, l *listener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			target, err := p.pick(l)
			if err != nil {
				// iptables rejects a Service without endpoints.
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				return
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			up, err := (&net.Dialer{}).DialContext(dctx, "tcp", target)
			cancel()
			if err != nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // the client sees a reset, as through a NAT to a closed port
				}
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			relay := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go relay(up, c)
			go relay(c, up)
			<-done
			<-done
		}()
	}
}
