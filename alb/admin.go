package alb

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"zerodrop.dev/zerodrop/internal/jsonkeys"
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
		return validation("%s", describeDecodeError(err))
	}
	if dec.More() {
		return validation("request body: trailing data after the JSON object")
	}
	if err := jsonkeys.Check(body, v); err != nil {
		return validation("%v", err)
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

// describeDecodeError says what is wrong with a request body in the API's
// terms: field names as the request spells them and JSON kinds, never Go
// type names.
func describeDecodeError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("request body: want a JSON object, got %s", jsonKind(te.Value))
		}
		return fmt.Sprintf("%s: want %s, got %s", field, wantKind(te.Type.Kind()), jsonKind(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("request body: malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "request body: the JSON ends too early"
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s", name)
	}
	return "request body: " + strings.TrimPrefix(msg, "json: ")
}

// wantKind names the JSON value a field of kind k takes.
func wantKind(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Pointer, reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another kind of value"
}

// jsonKind turns the decoder's description of a value ("string", "number
// 3.5", "array") into words.
func jsonKind(v string) string {
	switch {
	case strings.HasPrefix(v, "number"):
		if n := strings.TrimSpace(strings.TrimPrefix(v, "number")); n != "" {
			return "the number " + n
		}
		return "a number"
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	case v == "bool":
		return "true or false"
	case v == "string":
		return "a string"
	}
	return v
}
