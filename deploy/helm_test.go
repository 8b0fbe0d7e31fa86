package deploy

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

const chartDir = "helm/cdcd"

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector yaml.MapSlice `yaml:"selector"` // Deployment: matchLabels; Service: the labels
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

// selectorLabels returns a Deployment's matchLabels or a Service's selector.
func (o k8sObject) selectorLabels() map[string]string {
	labels := map[string]string{}
	for _, item := range o.Spec.Selector {
		if item.Key == "matchLabels" {
			if m, ok := item.Value.(map[string]any); ok {
				for k, v := range m {
					labels[k] = fmt.Sprint(v)
				}
			}
			continue
		}
		labels[fmt.Sprint(item.Key)] = fmt.Sprint(item.Value)
	}
	return labels
}

func contains(labels, subset map[string]string) bool {
	for k, v := range subset {
		if labels[k] != v {
			return false
		}
	}
	return len(subset) > 0
}

// TestHelmChart renders the chart with its defaults and with an existing
// Secret and more sink workers, and checks the capture Deployment (a
// standby, replaced rather than rolled), the sinks Deployment (scaled by
// values), their command lines, the config from the ConfigMap (which must
// validate with the Secret's variables), the ports and the probes.
func TestHelmChart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		values   map[string]any
		capture  int
		sinks    int
		secretOf string // the Secret the pods read; "" for the chart's own
	}{
		{"defaults", nil, 2, 3, ""},
		{"existing secret", map[string]any{
			"secret":  map[string]any{"existingSecret": "cdcd-env"},
			"sinks":   map[string]any{"replicas": 5},
			"capture": map[string]any{"replicas": 3},
		}, 3, 5, "cdcd-env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := renderChart(chartDir, tc.values)
			if err != nil {
				t.Fatalf("render %s: %v", chartDir, err)
			}
			objects := map[string]k8sObject{} // by kind/name
			for _, doc := range docs {
				var o k8sObject
				if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
					t.Fatalf("parse rendered manifest: %v\n%s", err, doc)
				}
				if o.Kind == "" || o.Metadata.Name == "" {
					t.Fatalf("rendered manifest without kind or name:\n%s", doc)
				}
				objects[o.Kind+"/"+o.Metadata.Name] = o
			}
			kinds := slices.Sorted(maps.Keys(objects))
			t.Logf("objects: %v", kinds)

			secret, ownSecret := objects["Secret/test-cdcd"]
			if ownSecret != (tc.secretOf == "") {
				t.Errorf("the chart makes a Secret: %v, want %v", ownSecret, tc.secretOf == "")
			}
			wantSecret := tc.secretOf
			if wantSecret == "" {
				wantSecret = "test-cdcd"
			}

			roles := map[string]int{}
			var capturePod map[string]string
			for _, key := range kinds {
				o := objects[key]
				if o.Kind != "Deployment" {
					continue
				}
				where := key
				pod := o.Spec.Template.Spec
				if !contains(o.Spec.Template.Metadata.Labels, o.selectorLabels()) {
					t.Errorf("%s: selector %v does not match the pod's labels %v", where, o.selectorLabels(), o.Spec.Template.Metadata.Labels)
				}
				if !pod.SecurityContext.RunAsNonRoot {
					t.Errorf("%s: runAsNonRoot is not set", where)
				}
				if len(pod.Containers) != 1 {
					t.Fatalf("%s: %d containers, want 1", where, len(pod.Containers))
				}
				c := pod.Containers[0]
				inv := checkArgs(t, where, c.Args)
				if o.Spec.Replicas == nil {
					t.Fatalf("%s: no replicas", where)
				}
				roles[inv.role] = *o.Spec.Replicas
				if inv.role == "capture" {
					capturePod = o.Spec.Template.Metadata.Labels
					if o.Spec.Strategy.Type != "Recreate" {
						t.Errorf("%s: strategy %q: the standby never turns ready, so a rolling update never ends; want Recreate", where, o.Spec.Strategy.Type)
					}
				}
				if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
					t.Errorf("%s: allowPrivilegeEscalation is not false", where)
				}

				// The config: a ConfigMap mounted where --config reads it.
				var cmName string
				for _, m := range c.VolumeMounts {
					if m.MountPath == path.Dir(inv.config) {
						for _, v := range pod.Volumes {
							if v.Name == m.Name && v.ConfigMap != nil {
								cmName = v.ConfigMap.Name
							}
						}
					}
				}
				cm, ok := objects["ConfigMap/"+cmName]
				if !ok {
					t.Fatalf("%s: no ConfigMap mounted at %s (ConfigMap %q)", where, path.Dir(inv.config), cmName)
				}
				text, ok := cm.Data[path.Base(inv.config)]
				if !ok {
					t.Fatalf("%s: ConfigMap %s has no key %s", where, cmName, path.Base(inv.config))
				}

				// The environment: the Secret, whole.
				var secretRefs []string
				for _, e := range c.EnvFrom {
					if e.SecretRef != nil {
						secretRefs = append(secretRefs, e.SecretRef.Name)
					}
				}
				if !slices.Equal(secretRefs, []string{wantSecret}) {
					t.Errorf("%s: envFrom secrets %v, want [%s]", where, secretRefs, wantSecret)
				}
				env := secret.StringData
				cfg, required := readConfig(t, where+" config", []byte(text), env)
				if ownSecret {
					for _, v := range required {
						t.Errorf("%s: the config reads ${%s}, which the Secret does not hold", where, v)
					}
					cfgPath := filepath.Join(t.TempDir(), "cdcd.yaml")
					if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
						t.Fatal(err)
					}
					validate(t, where, cfgPath, env)
				}
				if cfg.Kafka == nil && inv.role != "all" {
					t.Errorf("%s: --role %s without a kafka: section", where, inv.role)
				}

				// Ports and probes on http.listen.
				port := listenPort(t, where, cfg)
				var portName string
				for _, p := range c.Ports {
					if fmt.Sprint(p.ContainerPort) == port {
						portName = p.Name
					}
				}
				if portName == "" {
					t.Errorf("%s: container ports %+v do not include http.listen's port %s", where, c.Ports, port)
				}
				for _, p := range []struct {
					name  string
					probe *k8sProbe
					path  string
				}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
					if p.probe == nil || p.probe.HTTPGet == nil {
						t.Errorf("%s: no %s probe", where, p.name)
						continue
					}
					got := fmt.Sprint(p.probe.HTTPGet.Port)
					if p.probe.HTTPGet.Path != p.path || (got != port && got != portName) {
						t.Errorf("%s: %s probe GET %s on port %s, want %s on %s (%s)", where, p.name, p.probe.HTTPGet.Path, got, p.path, port, portName)
					}
				}
			}
			if roles["capture"] != tc.capture || roles["sinks"] != tc.sinks || len(roles) != 2 {
				t.Errorf("replicas by role: %v, want capture %d (one stands by) and sinks %d", roles, tc.capture, tc.sinks)
			}

			svc, ok := objects["Service/test-cdcd"]
			if !ok {
				t.Fatal("no Service")
			}
			if !contains(capturePod, svc.selectorLabels()) || !strings.Contains(svc.selectorLabels()["app.kubernetes.io/component"], "capture") {
				t.Errorf("Service selects %v, want the capture pods (%v), which take webhooks", svc.selectorLabels(), capturePod)
			}
			for _, p := range svc.Spec.Ports {
				if fmt.Sprint(p.TargetPort) != "http" {
					t.Errorf("Service targetPort %v, want the container port named http", p.TargetPort)
				}
			}
		})
	}
}
