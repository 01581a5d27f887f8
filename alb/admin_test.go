package alb

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func postRaw(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want JSON", url, ct)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: body is not JSON: %v", url, err)
	}
	return resp.StatusCode, m
}

func TestAdminAPIBadInput(t *testing.T) {
	cfg := oneGroup(HealthCheckConfig{Enabled: boolp(false)})
	cfg.AdminToken = "s3cret"
	tl := startLB(t, cfg)
	base := tl.AdminURL() + "/v1/"
	cases := []struct {
		op, token, body string
		status          int
		code            string
	}{
		{"RegisterTargets", "", `{}`, 401, "Unauthorized"},
		{"RegisterTargets", "wrong", `{}`, 401, "Unauthorized"},
		{"RegisterTargets", "s3cret", `{"TargetGroupName":"app","Targets":[{"Id":"127.0.0.1","Port":8000}],"Extra":1}`, 400, "ValidationError"},
		{"RegisterTargets", "s3cret", `{"TargetGroupName":"app","Targets":[`, 400, "ValidationError"},
		{"RegisterTargets", "s3cret", `{"TargetGroupName":"app","Targets":[{"Id":"not-an-ip","Port":8000}]}`, 400, "ValidationError"},
		{"RegisterTargets", "s3cret", `{"TargetGroupName":"app","Targets":[{"Id":"127.0.0.1","Port":70000}]}`, 400, "ValidationError"},
		{"RegisterTargets", "s3cret", `{"TargetGroupName":"app","Targets":[]}`, 400, "ValidationError"},
		{"RegisterTargets", "s3cret", `{"TargetGroupName":"nope","Targets":[{"Id":"127.0.0.1","Port":1}]}`, 400, "TargetGroupNotFound"},
		{"DeregisterTargets", "s3cret", `{"TargetGroupName":"app","Targets":[{"Id":"127.0.0.9","Port":1}]}`, 400, "InvalidTarget"},
		{"ModifyRule", "s3cret", `{"Priority":99,"Actions":[]}`, 400, "RuleNotFound"},
		{"ModifyRule", "s3cret", `{"Priority":1,"Actions":[{"Type":"forward","ForwardConfig":{"TargetGroups":[{"TargetGroupName":"app","Weight":1000}]}}]}`, 400, "ValidationError"},
		{"ModifyRule", "s3cret", `{"Priority":1,"Actions":[{"Type":"redirect","ForwardConfig":{"TargetGroups":[]}}]}`, 400, "ValidationError"},
		{"ModifyTargetGroup", "s3cret", `{"TargetGroupName":"app","HealthCheckIntervalSeconds":3}`, 400, "ValidationError"},
		{"ModifyTargetGroup", "s3cret", `{"TargetGroupName":"app","Matcher":{"HttpCode":"600"}}`, 400, "ValidationError"},
		{"ModifyTargetGroupAttributes", "s3cret", `{"TargetGroupName":"app","Attributes":[{"Key":"deregistration_delay.timeout_seconds","Value":"4000"}]}`, 400, "ValidationError"},
		{"ModifyTargetGroupAttributes", "s3cret", `{"TargetGroupName":"app","Attributes":[{"Key":"stickiness.enabled","Value":"true"}]}`, 400, "ValidationError"},
		{"SetTargetFault", "s3cret", `{"Address":"127.0.0.1","Fault":"melt"}`, 400, "ValidationError"},
		{"Frobnicate", "s3cret", `{}`, 404, "UnknownOperation"},
	}
	for _, tc := range cases {
		status, m := postRaw(t, base+tc.op, tc.token, tc.body)
		e, _ := m["Error"].(map[string]any)
		if status != tc.status || e == nil || e["Code"] != tc.code || e["Message"] == "" {
			t.Errorf("%s %s: %d %v, want %d %s", tc.op, tc.body, status, m, tc.status, tc.code)
		}
	}
	// GET on an operation is 405, JSON.
	resp, err := http.Get(base + "DescribeLoadBalancer")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 && resp.StatusCode != 405 {
		t.Errorf("GET operation: %d", resp.StatusCode)
	}
	// The Go client with the token works and surfaces API errors.
	c := NewClient(tl.AdminURL(), "s3cret", nil)
	if _, err := c.DescribeLoadBalancer(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err = c.RegisterTargets(t.Context(), TargetsInput{TargetGroupName: "nope", Targets: []TargetDescription{{ID: "127.0.0.1", Port: 1}}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "TargetGroupNotFound" {
		t.Fatalf("client error %v", err)
	}
	if _, err := NewClient(tl.AdminURL(), "", nil).DescribeLoadBalancer(t.Context()); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("client without token: %v", err)
	}
}

func TestAdminAPIOperationsAndMetrics(t *testing.T) {
	ht := startHealthTarget(t, "a")
	tl := startLB(t, oneGroup(HealthCheckConfig{Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second)}))
	ctx := t.Context()
	c := tl.admin
	if _, err := c.RegisterTargets(ctx, TargetsInput{TargetGroupName: "app", Targets: []TargetDescription{desc(ht.addr)}}); err != nil {
		t.Fatal(err)
	}
	tl.waitState(t, "app", ht.addr, StateHealthy, 3*time.Second)
	attrs, err := c.ModifyTargetGroupAttributes(ctx, ModifyTargetGroupAttributesInput{TargetGroupName: "app", Attributes: []Attribute{
		{Key: AttrDeregistrationDelay, Value: "5"}, {Key: AttrAlgorithm, Value: LeastOutstandingRequests}}})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes[0].Value != "5" || attrs.Attributes[2].Value != LeastOutstandingRequests {
		t.Fatalf("attributes %+v", attrs.Attributes)
	}
	// A health check that fails (path answers 404) takes the target out.
	if _, err := c.ModifyTargetGroup(ctx, ModifyTargetGroupInput{TargetGroupName: "app", HealthCheckPath: "/missing", Matcher: &HTTPCodeMatcher{HTTPCode: "200"}}); err != nil {
		t.Fatal(err)
	}
	// nameHandler answers 200 on every path; switch the matcher instead.
	if _, err := c.ModifyTargetGroup(ctx, ModifyTargetGroupInput{TargetGroupName: "app", Matcher: &HTTPCodeMatcher{HTTPCode: "201"}}); err != nil {
		t.Fatal(err)
	}
	tl.waitState(t, "app", ht.addr, StateUnhealthy, 3*time.Second)
	d, err := c.DescribeLoadBalancer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tg := d.TargetGroups[0]
	if tg.HealthCheckPath != "/missing" || tg.Matcher.HTTPCode != "201" || tg.Attributes[0].Value != "5" || len(tg.Targets) != 1 || tg.Targets[0].TargetHealth.State != StateUnhealthy {
		t.Fatalf("DescribeLoadBalancer: %+v", tg)
	}
	tl.get(t, "/")
	tl.waitEntries(t, 1)
	resp, err := http.Get(tl.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"RequestCount", "HTTPCode_ELB_502_Count", "HTTPCode_ELB_503_Count", "HTTPCode_ELB_504_Count",
		"HTTPCode_Target_5XX_Count", "TargetConnectionErrorCount", "HealthyHostCount", "UnHealthyHostCount", "TargetResponseTime_bucket"} {
		if !strings.Contains(string(body), name+"{target_group=\"app\"") {
			t.Errorf("/metrics lacks %s for target_group app", name)
		}
	}
	if !strings.Contains(string(body), `UnHealthyHostCount{target_group="app"} 1`) || !strings.Contains(string(body), `RequestCount{target_group="app"} 1`) {
		t.Errorf("/metrics values wrong:\n%s", body)
	}
}
