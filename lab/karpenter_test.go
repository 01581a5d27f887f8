package lab

import (
	"strings"
	"testing"
	"time"
)

func TestKarpenterDefaults(t *testing.T) {
	off := KarpenterConfig{}
	if err := off.defaults(); err != nil || off.InstanceTypes != nil || off.LaunchLatency != 0 {
		t.Fatalf("a lab without Karpenter got Karpenter settings: %+v %v", off, err)
	}
	on := KarpenterConfig{Enabled: true, RegistrationLatency: 30 * time.Second}
	if err := on.defaults(); err != nil {
		t.Fatal(err)
	}
	if len(on.InstanceTypes) != 3 || on.LaunchLatency != 2*time.Second || on.RegistrationLatency != 30*time.Second ||
		on.BatchIdleDuration != time.Second || on.BatchMaxDuration != 10*time.Second {
		t.Fatalf("defaults: %+v", on)
	}
	bad := KarpenterConfig{Enabled: true, LaunchLatency: -time.Second}
	if err := bad.defaults(); err == nil || !strings.Contains(err.Error(), "launch latency") {
		t.Fatalf("a negative latency: %v", err)
	}
}

func TestParseInstanceTypes(t *testing.T) {
	good := `
- name: lab.xl
  cpu: "16"
  memory: 32Gi
  pods: 200
  arch: arm64
  offerings:
  - {zone: lab-a, capacityType: spot, price: 0.1}
  - {zone: lab-b, capacityType: on-demand, price: 0.3, unavailable: true}
`
	types, err := ParseInstanceTypes([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 1 || types[0].Arch != "arm64" || len(types[0].Offerings) != 2 || !types[0].Offerings[1].Unavailable {
		t.Fatalf("parsed %+v", types)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"empty":         {"[]", "catalog is empty"},
		"no name":       {`[{cpu: "1", memory: 1Gi, pods: 5, offerings: [{zone: a, capacityType: spot}]}]`, "name is empty"},
		"twice":         {`[{name: a, cpu: "1", memory: 1Gi, pods: 5, offerings: [{zone: a, capacityType: spot}]}, {name: a, cpu: "1", memory: 1Gi, pods: 5, offerings: [{zone: a, capacityType: spot}]}]`, "listed twice"},
		"bad cpu":       {`[{name: a, cpu: lots, memory: 1Gi, pods: 5, offerings: [{zone: a, capacityType: spot}]}]`, "cpu"},
		"zero memory":   {`[{name: a, cpu: "1", memory: "0", pods: 5, offerings: [{zone: a, capacityType: spot}]}]`, "must be positive"},
		"too many pods": {`[{name: a, cpu: "1", memory: 1Gi, pods: 300, offerings: [{zone: a, capacityType: spot}]}]`, "1-253"},
		"arch":          {`[{name: a, cpu: "1", memory: 1Gi, pods: 5, arch: s390x, offerings: [{zone: a, capacityType: spot}]}]`, "arch"},
		"no offerings":  {`[{name: a, cpu: "1", memory: 1Gi, pods: 5}]`, "no offerings"},
		"capacity type": {`[{name: a, cpu: "1", memory: 1Gi, pods: 5, offerings: [{zone: a, capacityType: reserved}]}]`, "capacity type"},
		"no zone":       {`[{name: a, cpu: "1", memory: 1Gi, pods: 5, offerings: [{capacityType: spot}]}]`, "no zone"},
		"price":         {`[{name: a, cpu: "1", memory: 1Gi, pods: 5, offerings: [{zone: a, capacityType: spot, price: -1}]}]`, "negative"},
		"unknown field": {`[{name: a, cpus: "1"}]`, "unknown field"},
		"not a list":    {`name: a`, "instance types"},
	} {
		if _, err := ParseInstanceTypes([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
	if err := ValidateInstanceTypes(DefaultInstanceTypes()); err != nil {
		t.Fatalf("the default catalog: %v", err)
	}
}

func FuzzParseInstanceTypes(f *testing.F) {
	f.Add([]byte(`[{name: lab.small, cpu: "2", memory: 4Gi, pods: 20, offerings: [{zone: lab-a, capacityType: on-demand, price: 0.04}]}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`- name: x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		types, err := ParseInstanceTypes(b)
		if err == nil {
			if verr := ValidateInstanceTypes(types); verr != nil {
				t.Fatalf("parsed a catalog that does not validate: %v", verr)
			}
		}
	})
}
