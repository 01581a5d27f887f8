package alb

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzAdminAPI sends arbitrary bodies to every operation and checks that
// the answer is never a 5xx and always a JSON object. Control-plane latency
// is an hour and the load balancer never starts, so nothing accepted ever
// reaches the data plane (and no health check dials out).
func FuzzAdminAPI(f *testing.F) {
	for _, s := range []string{
		`{"TargetGroupName":"app","Targets":[{"Id":"127.0.0.1","Port":8000}]}`,
		`{"TargetGroupName":"app","Targets":[{"Id":"::1","Port":1}]}`,
		`{"Priority":1,"Actions":[{"Type":"forward","ForwardConfig":{"TargetGroups":[{"TargetGroupName":"app","Weight":5}]}}]}`,
		`{"TargetGroupName":"app","HealthCheckIntervalSeconds":10,"Matcher":{"HttpCode":"200-399"}}`,
		`{"TargetGroupName":"app","Attributes":[{"Key":"slow_start.duration_seconds","Value":"30"}]}`,
		`{"Address":"127.0.0.1","Fault":"blackhole"}`,
		`{}`, ``, `[]`, `null`, `{"Targets":null}`,
	} {
		for i := range Operations {
			f.Add(uint8(i), s)
		}
	}
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)}, "127.0.0.1:1")
	cfg.ControlPlaneLatency.Default = Duration(time.Hour)
	lb, err := New(cfg, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { lb.Close(context.Background()) })
	h := lb.adminHandler()
	f.Fuzz(func(t *testing.T, op uint8, body string) {
		name := Operations[int(op)%len(Operations)]
		req := httptest.NewRequest(http.MethodPost, "/v1/"+name, strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: HTTP %d %s", name, body, rec.Code, rec.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %q: answer is not a JSON object: %v: %s", name, body, err, rec.Body)
		}
	})
}
