package alb

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const maxAdminBody = 1 << 20

// adminHandler serves the admin API:
//
//	POST /v1/<Operation>  JSON in, JSON out (see Operations)
//	GET  /metrics         Prometheus metrics
//	GET  /healthz         200 ok (no token needed)
func (lb *LoadBalancer) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	metrics := promhttp.HandlerFor(lb.metrics.reg, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", lb.authorized(metrics))
	mux.Handle("/v1/{op}", lb.authorized(http.HandlerFunc(lb.serveOperation)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, &APIError{Status: 404, Code: "NotFound", Message: fmt.Sprintf("no such endpoint %s %s; operations are POST /v1/<Operation>", r.Method, r.URL.Path)})
	})
	return mux
}

func (lb *LoadBalancer) authorized(h http.Handler) http.Handler {
	if lb.cfg.AdminToken == "" {
		return h
	}
	want := []byte("Bearer " + lb.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="zerodrop-alb"`)
			writeAPIError(w, &APIError{Status: 401, Code: "Unauthorized", Message: "missing or wrong bearer token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (lb *LoadBalancer) serveOperation(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeAPIError(w, &APIError{Status: 405, Code: "MethodNotAllowed", Message: "operations take POST with a JSON body"})
		return
	}
	var (
		out any
		err error
	)
	switch op {
	case "RegisterTargets":
		var in TargetsInput
		if err = decode(r, &in); err == nil {
			out, err = lb.RegisterTargets(in)
		}
	case "DeregisterTargets":
		var in TargetsInput
		if err = decode(r, &in); err == nil {
			out, err = lb.DeregisterTargets(in)
		}
	case "DescribeTargetHealth":
		var in DescribeTargetHealthInput
		if err = decode(r, &in); err == nil {
			out, err = lb.DescribeTargetHealth(in)
		}
	case "ModifyRule":
		var in ModifyRuleInput
		if err = decode(r, &in); err == nil {
			out, err = lb.ModifyRule(in)
		}
	case "ModifyTargetGroup":
		var in ModifyTargetGroupInput
		if err = decode(r, &in); err == nil {
			out, err = lb.ModifyTargetGroup(in)
		}
	case "ModifyTargetGroupAttributes":
		var in ModifyTargetGroupAttributesInput
		if err = decode(r, &in); err == nil {
			out, err = lb.ModifyTargetGroupAttributes(in)
		}
	case "DescribeLoadBalancer":
		var in struct{}
		if err = decode(r, &in); err == nil {
			out = lb.DescribeLoadBalancer()
		}
	case "SetTargetFault":
		var in SetTargetFaultInput
		if err = decode(r, &in); err == nil {
			err = lb.SetTargetFault(in)
			out = struct{}{}
		}
	default:
		err = &APIError{Status: 404, Code: "UnknownOperation", Message: fmt.Sprintf("unknown operation %q; want one of %s", op, strings.Join(Operations, ", "))}
	}
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors. An empty body is an empty object.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return validation("reading request body: %v", err)
	}
	if len(body) > maxAdminBody {
		return &APIError{Status: 413, Code: "RequestTooLarge", Message: "request body larger than 1 MiB"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return validation("request body: %v", err)
	}
	if dec.More() {
		return validation("request body: trailing data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = 500
		b = []byte(`{"Error":{"Code":"InternalError","Message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeAPIError(w http.ResponseWriter, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = &APIError{Status: 400, Code: "ValidationError", Message: err.Error()}
	}
	writeJSON(w, ae.Status, struct {
		Error *APIError `json:"Error"`
	}{ae})
}
