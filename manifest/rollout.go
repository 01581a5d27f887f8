package manifest

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rolloutDoc is the subset of an argoproj.io Rollout that zerodrop reads.
type rolloutDoc struct {
	Spec struct {
		Replicas        *int32                 `json:"replicas"`
		MinReadySeconds int32                  `json:"minReadySeconds"`
		Selector        *metav1.LabelSelector  `json:"selector"`
		Template        corev1.PodTemplateSpec `json:"template"`
		WorkloadRef     *struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"workloadRef"`
		Strategy struct {
			Canary *struct {
				CanaryService string `json:"canaryService"`
				StableService string `json:"stableService"`
				Steps         []struct {
					SetWeight *int32 `json:"setWeight"`
					Pause     *struct {
						Duration *intstr.IntOrString `json:"duration"`
					} `json:"pause"`
					SetCanaryScale *struct {
						Weight             *int32 `json:"weight"`
						Replicas           *int32 `json:"replicas"`
						MatchTrafficWeight bool   `json:"matchTrafficWeight"`
					} `json:"setCanaryScale"`
				} `json:"steps"`
				TrafficRouting *struct {
					ALB *struct {
						Ingress     string   `json:"ingress"`
						Ingresses   []string `json:"ingresses"`
						ServicePort int32    `json:"servicePort"`
						RootService string   `json:"rootService"`
					} `json:"alb"`
				} `json:"trafficRouting"`
				DynamicStableScale    bool                `json:"dynamicStableScale"`
				ScaleDownDelaySeconds *int32              `json:"scaleDownDelaySeconds"`
				MaxSurge              *intstr.IntOrString `json:"maxSurge"`
				MaxUnavailable        *intstr.IntOrString `json:"maxUnavailable"`
			} `json:"canary"`
			BlueGreen *struct {
				ActiveService              string `json:"activeService"`
				PreviewService             string `json:"previewService"`
				AutoPromotionEnabled       *bool  `json:"autoPromotionEnabled"`
				AutoPromotionSeconds       *int32 `json:"autoPromotionSeconds"`
				ScaleDownDelaySeconds      *int32 `json:"scaleDownDelaySeconds"`
				AbortScaleDownDelaySeconds *int32 `json:"abortScaleDownDelaySeconds"`
				PreviewReplicaCount        *int32 `json:"previewReplicaCount"`
			} `json:"blueGreen"`
		} `json:"strategy"`
	} `json:"spec"`
}

func (b *builder) rollout(meta Meta, data []byte) {
	var r rolloutDoc
	if !b.decode(&meta, data, &r) {
		return
	}
	if r.Spec.WorkloadRef != nil {
		b.diag(meta.At("spec.workloadRef"), meta.Ref(), "spec.workloadRef (%s %s) is not read: put the pod template in the Rollout to check it", r.Spec.WorkloadRef.Kind, r.Spec.WorkloadRef.Name)
		return
	}
	w := &Workload{Meta: meta}
	w.Replicas = int32Field(&meta, "spec.replicas", r.Spec.Replicas, 1)
	w.MinReadySeconds = Field[int32]{Value: r.Spec.MinReadySeconds, Default: !meta.ix.has("spec.minReadySeconds"), Pos: meta.At("spec.minReadySeconds")}
	switch c := r.Spec.Strategy.Canary; {
	case c != nil:
		const base = "spec.strategy.canary"
		w.Strategy.Type = Field[string]{Value: "Canary", Pos: meta.At(base)}
		w.Strategy.MaxSurge = b.intOrPercent(&meta, base+".maxSurge", c.MaxSurge, DefaultMaxSurge)
		w.Strategy.MaxUnavailable = b.intOrPercent(&meta, base+".maxUnavailable", c.MaxUnavailable, "0")
		can := &Canary{Pos: meta.At(base), CanaryService: c.CanaryService, StableService: c.StableService}
		can.DynamicStableScale = Field[bool]{Value: c.DynamicStableScale, Default: !meta.ix.has(base + ".dynamicStableScale"), Pos: meta.At(base + ".dynamicStableScale")}
		if c.ScaleDownDelaySeconds != nil {
			can.ScaleDownDelay = Field[time.Duration]{Value: time.Duration(*c.ScaleDownDelaySeconds) * time.Second, Pos: meta.At(base + ".scaleDownDelaySeconds")}
		} else {
			can.ScaleDownDelay = Field[time.Duration]{Value: DefaultScaleDownDelay, Default: true, Pos: meta.At(base + ".scaleDownDelaySeconds")}
		}
		for i, s := range c.Steps {
			sp := indexPath(base+".steps", i)
			step := CanaryStep{Pos: meta.At(sp)}
			switch {
			case s.SetWeight != nil:
				step.SetWeight = s.SetWeight
				if *s.SetWeight < 0 || *s.SetWeight > 100 {
					b.diag(meta.At(sp+".setWeight"), meta.Ref(), "setWeight %d: want 0 to 100", *s.SetWeight)
				}
			case s.Pause != nil:
				if s.Pause.Duration == nil {
					step.PauseIndefinite = true
				} else if d, ok := parseArgoDuration(*s.Pause.Duration); ok {
					step.Pause = &d
				} else {
					b.diag(meta.At(sp+".pause.duration"), meta.Ref(), "pause duration %q: want seconds or a duration such as 30s, 5m, 1h", s.Pause.Duration.String())
				}
			case s.SetCanaryScale != nil:
				step.SetCanaryScale = &CanaryScale{Weight: s.SetCanaryScale.Weight, Replicas: s.SetCanaryScale.Replicas, MatchTrafficWeight: s.SetCanaryScale.MatchTrafficWeight}
			default:
				continue // analysis, experiment …: no traffic change
			}
			can.Steps = append(can.Steps, step)
		}
		if tr := c.TrafficRouting; tr != nil && tr.ALB != nil {
			alb := &ALBRouting{Pos: meta.At(base + ".trafficRouting.alb"), ServicePort: tr.ALB.ServicePort, RootService: tr.ALB.RootService}
			if tr.ALB.Ingress != "" {
				alb.Ingresses = append(alb.Ingresses, tr.ALB.Ingress)
			}
			alb.Ingresses = append(alb.Ingresses, tr.ALB.Ingresses...)
			if len(alb.Ingresses) == 0 {
				b.diag(alb.Pos, meta.Ref(), "trafficRouting.alb names no ingress")
			}
			can.ALB = alb
		}
		w.Canary = can
	case r.Spec.Strategy.BlueGreen != nil:
		w.BlueGreen = b.blueGreen(&meta, r)
		w.Strategy.Type = Field[string]{Value: "BlueGreen", Pos: meta.At("spec.strategy.blueGreen")}
		w.Strategy.MaxSurge = Field[intstr.IntOrString]{Value: intstr.FromString("100%"), Default: true, Pos: meta.At("spec.strategy.blueGreen")}
		w.Strategy.MaxUnavailable = Field[intstr.IntOrString]{Value: intstr.FromInt32(0), Default: true, Pos: meta.At("spec.strategy.blueGreen")}
	default:
		b.diag(meta.At("spec.strategy"), meta.Ref(), "Rollout has neither a canary nor a blueGreen strategy")
		w.Strategy.Type = Field[string]{Value: "Canary", Default: true, Pos: meta.At("spec.strategy")}
		w.Strategy.MaxSurge = Field[intstr.IntOrString]{Value: intstr.FromString(DefaultMaxSurge), Default: true, Pos: meta.At("spec.strategy")}
		w.Strategy.MaxUnavailable = Field[intstr.IntOrString]{Value: intstr.FromInt32(0), Default: true, Pos: meta.At("spec.strategy")}
	}
	b.podWorkload(w, r.Spec.Selector, r.Spec.Template)
}

func (b *builder) blueGreen(meta *Meta, r rolloutDoc) *BlueGreen {
	const base = "spec.strategy.blueGreen"
	bg := r.Spec.Strategy.BlueGreen
	out := &BlueGreen{Pos: meta.At(base), ActiveService: bg.ActiveService, PreviewService: bg.PreviewService, PreviewReplicaCount: bg.PreviewReplicaCount}
	if out.ActiveService == "" {
		b.diag(meta.At(base+".activeService"), meta.Ref(), "blueGreen.activeService is required: the rollout has no Service to switch")
	}
	out.AutoPromotionEnabled = Field[bool]{Value: true, Default: true, Pos: meta.At(base + ".autoPromotionEnabled")}
	if v := bg.AutoPromotionEnabled; v != nil {
		out.AutoPromotionEnabled = Field[bool]{Value: *v, Pos: out.AutoPromotionEnabled.Pos}
	}
	secs := func(key string, v *int32, def time.Duration) Field[time.Duration] {
		p := meta.At(base + "." + key)
		if v == nil {
			return Field[time.Duration]{Value: def, Default: true, Pos: p}
		}
		if *v < 0 {
			b.diag(p, meta.Ref(), "%s %d must not be negative; using the default %v", key, *v, def)
			return Field[time.Duration]{Value: def, Default: true, Pos: p}
		}
		return Field[time.Duration]{Value: time.Duration(*v) * time.Second, Pos: p}
	}
	if bg.AutoPromotionSeconds != nil {
		f := secs("autoPromotionSeconds", bg.AutoPromotionSeconds, 0)
		out.AutoPromotionAfter = &f
	}
	out.ScaleDownDelay = secs("scaleDownDelaySeconds", bg.ScaleDownDelaySeconds, DefaultScaleDownDelay)
	out.AbortScaleDownDelay = secs("abortScaleDownDelaySeconds", bg.AbortScaleDownDelaySeconds, DefaultScaleDownDelay)
	return out
}

// parseArgoDuration reads a pause duration: whole seconds, or a number with
// an s, m or h suffix.
func parseArgoDuration(v intstr.IntOrString) (time.Duration, bool) {
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			return 0, false
		}
		return time.Duration(v.IntVal) * time.Second, true
	}
	s := v.StrVal
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}
