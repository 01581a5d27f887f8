package alb

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// CommandLine holds the settings of `zerodrop alb`: either one target group
// described by flags, or a config file that some flags may override.
type CommandLine struct {
	ConfigFile                       string
	Listen, Admin, AdminToken        string
	AccessLog, Defaults              string
	HealthPath, SuccessCodes         string
	Algorithm                        string
	Targets                          []string
	Interval, HealthTimeout          time.Duration
	DeregistrationDelay, IdleTimeout time.Duration
	SlowStart                        time.Duration
	Healthy, Unhealthy               int
	TimeScale                        float64
	NoHealthCheck, ReuseClosed       bool
}

// targetGroupFlags describe the single target group; they cannot be
// combined with a config file.
var targetGroupFlags = []string{"target", "health-path", "interval", "health-timeout", "healthy", "unhealthy",
	"success-codes", "deregistration-delay", "slow-start", "algorithm", "no-health-check", "defaults", "idle-timeout"}

// flagOfField names the command-line flag behind a Config field path.
var flagOfField = map[string]string{
	"listen": "listen", "admin": "admin", "timeScale": "time-scale", "defaults": "defaults", "idleTimeout": "idle-timeout",
	"targetGroups[0].healthCheck.path": "health-path", "targetGroups[0].healthCheck.interval": "interval",
	"targetGroups[0].healthCheck.timeout": "health-timeout", "targetGroups[0].healthCheck.healthyThreshold": "healthy",
	"targetGroups[0].healthCheck.unhealthyThreshold": "unhealthy", "targetGroups[0].healthCheck.successCodes": "success-codes",
	"targetGroups[0].deregistrationDelay": "deregistration-delay", "targetGroups[0].slowStart": "slow-start",
	"targetGroups[0].algorithm": "algorithm",
}

// Config builds the load balancer's Config. changed reports whether the
// user set a flag; getenv reads ZERODROP_ALB_ADMIN_TOKEN when no token was
// given. Errors name the flag (or the file, line and field) at fault.
func (c CommandLine) Config(changed func(flag string) bool, getenv func(string) string) (Config, error) {
	var cfg Config
	if c.ConfigFile != "" {
		for _, name := range targetGroupFlags {
			if changed(name) {
				return Config{}, fmt.Errorf("alb: --%s cannot be combined with --config; set it in the file", name)
			}
		}
		fc, err := LoadConfigFile(c.ConfigFile)
		if err != nil {
			return Config{}, err
		}
		cfg = fc
	} else {
		hc := HealthCheckConfig{Path: c.HealthPath, SuccessCodes: c.SuccessCodes, HealthyThreshold: c.Healthy,
			UnhealthyThreshold: c.Unhealthy, Interval: Duration(c.Interval), Timeout: Duration(c.HealthTimeout)}
		if c.NoHealthCheck {
			off := false
			hc.Enabled = &off
		}
		d := Duration(c.DeregistrationDelay)
		cfg = Config{
			Defaults:    c.Defaults,
			IdleTimeout: Duration(c.IdleTimeout),
			TargetGroups: []TargetGroupConfig{{Name: "default", HealthCheck: hc, Targets: c.Targets,
				DeregistrationDelay: &d, SlowStart: Duration(c.SlowStart), Algorithm: c.Algorithm}},
			Rules: []RuleConfig{{Priority: 1, Forward: []WeightedTargetGroup{{TargetGroup: "default"}}}},
		}
	}
	if changed("time-scale") && !(c.TimeScale > 0 && c.TimeScale <= 1000) {
		return Config{}, fmt.Errorf("alb: --time-scale %v: want a number > 0 and <= 1000 (0.1 runs ten times faster)", c.TimeScale)
	}
	fromFlags := c.ConfigFile == ""
	if fromFlags || changed("listen") {
		cfg.Listen = c.Listen
	}
	if fromFlags || changed("admin") {
		cfg.Admin = c.Admin
	}
	if fromFlags || changed("time-scale") {
		cfg.TimeScale = c.TimeScale
	}
	if changed("admin-token") {
		cfg.AdminToken = c.AdminToken
	}
	if changed("access-log") {
		cfg.AccessLog = c.AccessLog
	}
	if changed("reuse-closed-idle-connections") {
		cfg.ReuseClosedIdleConnections = c.ReuseClosed
	}
	if cfg.AdminToken == "" && getenv != nil {
		cfg.AdminToken = getenv("ZERODROP_ALB_ADMIN_TOKEN")
	}
	if _, err := cfg.withDefaults(); err != nil {
		return Config{}, c.flagError(err)
	}
	return cfg, nil
}

// flagError renders a config field error in terms of the command's flags
// when the config came from flags.
func (c CommandLine) flagError(err error) error {
	var fe *FieldError
	if c.ConfigFile != "" || !errors.As(err, &fe) {
		return err
	}
	if n, ok := flagOfField[fe.Field]; ok {
		return fmt.Errorf("alb: --%s: %s", n, fe.Msg)
	}
	if strings.HasPrefix(fe.Field, "targetGroups[0].targets") {
		return fmt.Errorf("alb: --target: %s", fe.Msg)
	}
	return err
}
