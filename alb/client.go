package alb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls a load balancer's admin API over HTTP.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the admin API at baseURL (for example
// http://127.0.0.1:8081). token may be empty; hc nil uses a default client.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// call posts in to /v1/op and decodes the answer into out. An error answer
// comes back as *APIError.
func (c *Client) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: encoding request: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/"+op, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: reading response: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error *APIError `json:"Error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == nil {
			return fmt.Errorf("%s: HTTP %d: %s", op, resp.StatusCode, bytes.TrimSpace(data))
		}
		e.Error.Status = resp.StatusCode
		return e.Error
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decoding response: %w", op, err)
	}
	return nil
}

// RegisterTargets registers targets in a target group.
func (c *Client) RegisterTargets(ctx context.Context, in TargetsInput) (AcceptedOutput, error) {
	var out AcceptedOutput
	return out, c.call(ctx, "RegisterTargets", in, &out)
}

// DeregisterTargets deregisters targets from a target group.
func (c *Client) DeregisterTargets(ctx context.Context, in TargetsInput) (AcceptedOutput, error) {
	var out AcceptedOutput
	return out, c.call(ctx, "DeregisterTargets", in, &out)
}

// DescribeTargetHealth reports the health of a target group's targets.
func (c *Client) DescribeTargetHealth(ctx context.Context, in DescribeTargetHealthInput) (DescribeTargetHealthOutput, error) {
	var out DescribeTargetHealthOutput
	return out, c.call(ctx, "DescribeTargetHealth", in, &out)
}

// ModifyRule replaces a rule's weighted forward action.
func (c *Client) ModifyRule(ctx context.Context, in ModifyRuleInput) (AcceptedOutput, error) {
	var out AcceptedOutput
	return out, c.call(ctx, "ModifyRule", in, &out)
}

// ModifyTargetGroup changes a target group's health check.
func (c *Client) ModifyTargetGroup(ctx context.Context, in ModifyTargetGroupInput) (AcceptedOutput, error) {
	var out AcceptedOutput
	return out, c.call(ctx, "ModifyTargetGroup", in, &out)
}

// ModifyTargetGroupAttributes sets target group attributes.
func (c *Client) ModifyTargetGroupAttributes(ctx context.Context, in ModifyTargetGroupAttributesInput) (ModifyTargetGroupAttributesOutput, error) {
	var out ModifyTargetGroupAttributesOutput
	return out, c.call(ctx, "ModifyTargetGroupAttributes", in, &out)
}

// DescribeLoadBalancer describes the whole load balancer.
func (c *Client) DescribeLoadBalancer(ctx context.Context) (DescribeLoadBalancerOutput, error) {
	var out DescribeLoadBalancerOutput
	return out, c.call(ctx, "DescribeLoadBalancer", struct{}{}, &out)
}

// SetTargetFault injects ("blackhole", "refuse") or clears ("none") a
// network fault for an IP or ip:port.
func (c *Client) SetTargetFault(ctx context.Context, in SetTargetFaultInput) error {
	return c.call(ctx, "SetTargetFault", in, nil)
}
