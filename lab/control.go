package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"zerodrop.dev/zerodrop/alb"
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// serveControl serves the lab's control API on a unix socket: GET /status,
// POST /nodes (add), POST /nodes/NAME/lose, DELETE /nodes/NAME.
func (l *Lab) serveControl(ctx context.Context, path string) (io.Closer, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("lab control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, l.Status()) })
	mux.HandleFunc("GET /target-health", func(w http.ResponseWriter, r *http.Request) {
		if l.lbc == nil {
			writeJSON(w, 200, map[string]any{})
			return
		}
		writeJSON(w, 200, l.lbc.TargetHealth())
	})
	mux.HandleFunc("GET /loadbalancers", func(w http.ResponseWriter, r *http.Request) {
		if l.lbc == nil {
			writeJSON(w, 200, map[string]any{})
			return
		}
		writeJSON(w, 200, l.lbc.LoadBalancers())
	})
	mux.HandleFunc("POST /nodes", func(w http.ResponseWriter, r *http.Request) {
		var spec NodeSpec
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
				writeError(w, 400, fmt.Errorf("node spec: %w", err))
				return
			}
		}
		ctx := l.nodeCtx
		if ctx == nil {
			ctx = context.Background()
		}
		kl, err := l.AddNode(ctx, spec)
		if err != nil {
			writeError(w, 409, err)
			return
		}
		writeJSON(w, 201, NodeInfo{Name: kl.NodeName(), IP: kl.NodeIP().String()})
	})
	mux.HandleFunc("POST /nodes/{name}/lose", func(w http.ResponseWriter, r *http.Request) {
		if err := l.LoseNode(r.PathValue("name")); err != nil {
			writeError(w, 404, err)
			return
		}
		writeJSON(w, 200, map[string]string{"lost": r.PathValue("name")})
	})
	mux.HandleFunc("DELETE /nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := l.RemoveNode(r.Context(), r.PathValue("name")); err != nil {
			writeError(w, 404, err)
			return
		}
		writeJSON(w, 200, map[string]string{"removed": r.PathValue("name")})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return srv, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"message": err.Error()}})
}

// Client talks to a running lab's control socket.
type Client struct {
	State State
	http  *http.Client
}

// Connect finds the lab running in dir.
func Connect(dir string) (*Client, error) {
	s, err := ReadState(dir)
	if err != nil {
		return nil, err
	}
	return &Client{State: s, http: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.Socket)
		}},
	}}, nil
}

func (c *Client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://lab"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("lab control socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error.Message == "" {
			e.Error.Message = resp.Status
		}
		return errors.New(e.Error.Message)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Status asks the lab for its status.
func (c *Client) Status() (Status, error) {
	var s Status
	err := c.do(http.MethodGet, "/status", nil, &s)
	return s, err
}

// AddNode adds a node.
func (c *Client) AddNode(spec NodeSpec) (NodeInfo, error) {
	var n NodeInfo
	err := c.do(http.MethodPost, "/nodes", spec, &n)
	return n, err
}

// LoseNode makes a node vanish abruptly.
func (c *Client) LoseNode(name string) error {
	return c.do(http.MethodPost, "/nodes/"+name+"/lose", nil, nil)
}

// RemoveNode stops and deletes a node.
func (c *Client) RemoveNode(name string) error {
	return c.do(http.MethodDelete, "/nodes/"+name, nil, nil)
}

// TargetHealth returns every load balancer's targets by group and target
// group, as aws elbv2 describe-target-health shows them.
func (c *Client) TargetHealth() (map[string]map[string][]alb.TargetHealthDescription, error) {
	var out map[string]map[string][]alb.TargetHealthDescription
	err := c.do(http.MethodGet, "/target-health", nil, &out)
	return out, err
}

// LoadBalancers returns each load balancer's address in the lab network and
// on the host.
func (c *Client) LoadBalancers() (map[string][2]string, error) {
	var out map[string][2]string
	err := c.do(http.MethodGet, "/loadbalancers", nil, &out)
	return out, err
}
