package deploytest

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// readDocs reads the YAML documents of a file into generic maps.
func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	for _, d := range strings.Split(string(b), "\n---\n") {
		var m map[string]any
		if err := yaml.UnmarshalStrict([]byte(d), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, m)
	}
	return docs
}

// get walks a path of map keys.
func get(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// The EKS files are not applied here (eksctl and Helm need AWS; the
// Karpenter CRDs are not in the lab), so this test holds them to each
// other: one cluster name, one discovery tag, the node class the pool names.
func TestEKSFilesAgree(t *testing.T) {
	cluster := readDocs(t, "../eks/cluster.yaml")[0]
	if cluster["kind"] != "ClusterConfig" || cluster["apiVersion"] != "eksctl.io/v1alpha5" {
		t.Fatalf("cluster.yaml: %v %v", cluster["apiVersion"], cluster["kind"])
	}
	name, _ := get(cluster, "metadata", "name").(string)
	region, _ := get(cluster, "metadata", "region").(string)
	if name == "" || region == "" || get(cluster, "metadata", "tags", "karpenter.sh/discovery") != name {
		t.Errorf("cluster.yaml: name %q region %q discovery tag %v", name, region, get(cluster, "metadata", "tags", "karpenter.sh/discovery"))
	}
	values := readDocs(t, "../eks/lbc-values.yaml")[0]
	if values["clusterName"] != name || values["region"] != region || values["ingressClass"] != "alb" {
		t.Errorf("lbc-values.yaml: clusterName %v region %v ingressClass %v; want %s %s alb", values["clusterName"], values["region"], values["ingressClass"], name, region)
	}
	if get(values, "serviceAccount", "name") != "aws-load-balancer-controller" || get(values, "serviceAccount", "create") != false {
		t.Errorf("lbc-values.yaml: the service account must be eksctl's (create: false, name aws-load-balancer-controller)")
	}
	var pool, class map[string]any
	for _, d := range readDocs(t, "../eks/nodepool.yaml") {
		switch d["kind"] {
		case "NodePool":
			pool = d
		case "EC2NodeClass":
			class = d
		}
	}
	if pool == nil || class == nil {
		t.Fatal("nodepool.yaml: want a NodePool and an EC2NodeClass")
	}
	if get(pool, "spec", "template", "spec", "nodeClassRef", "name") != get(class, "metadata", "name") {
		t.Errorf("NodePool names node class %v, the EC2NodeClass is %v", get(pool, "spec", "template", "spec", "nodeClassRef", "name"), get(class, "metadata", "name"))
	}
	reqs, _ := get(pool, "spec", "template", "spec", "requirements").([]any)
	want := map[string][]string{"karpenter.sh/capacity-type": {"spot", "on-demand"}, "kubernetes.io/arch": {"arm64", "amd64"}}
	for _, r := range reqs {
		r, _ := r.(map[string]any)
		key, _ := r["key"].(string)
		if w, ok := want[key]; ok {
			if vals, _ := r["values"].([]any); len(vals) != len(w) || r["operator"] != "In" {
				t.Errorf("NodePool requirement %s: %v %v, want In %v", key, r["operator"], r["values"], w)
			}
			delete(want, key)
		}
	}
	if len(want) > 0 {
		t.Errorf("NodePool lacks requirements %v", want)
	}
	for _, sel := range []string{"subnetSelectorTerms", "securityGroupSelectorTerms"} {
		terms, _ := get(class, "spec", sel).([]any)
		if len(terms) != 1 || get(terms[0].(map[string]any), "tags", "karpenter.sh/discovery") != name {
			t.Errorf("EC2NodeClass %s: %v, want the discovery tag %s", sel, terms, name)
		}
	}
}

// The controller's version is pinned in one place per file, and they
// agree: the Helm chart in lbc-values.yaml and docs/eks.md, and the IAM
// policy of the same controller release (a tag, not main: the policy
// changes between releases).
func TestLoadBalancerControllerVersionPinned(t *testing.T) {
	chart := regexp.MustCompile(`--version (\d+\.\d+\.\d+)`)
	policy := regexp.MustCompile(`aws-load-balancer-controller/(v[^/]+)/docs/install/iam_policy\.json`)
	want := map[string]string{}
	for _, f := range []string{"../eks/lbc-values.yaml", "../../docs/eks.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, p := chart.FindAllStringSubmatch(string(b), -1), policy.FindAllStringSubmatch(string(b), -1)
		if len(c) == 0 || len(p) == 0 {
			t.Errorf("%s: chart version %v, IAM policy link %v; want both", f, c, p)
			continue
		}
		for _, m := range append(c, p...) {
			key := "chart"
			if strings.HasPrefix(m[1], "v") {
				key = "policy"
			}
			if w, ok := want[key]; ok && w != m[1] {
				t.Errorf("%s: %s %s, elsewhere %s", f, key, m[1], w)
			}
			want[key] = m[1]
		}
	}
	// Chart 1.N.P is controller v2.N.P.
	if c, p := want["chart"], want["policy"]; c != "" && p != "v2"+strings.TrimPrefix(c, "1") {
		t.Errorf("chart %s with the IAM policy of %s; want v2%s", c, p, strings.TrimPrefix(c, "1"))
	}
}
