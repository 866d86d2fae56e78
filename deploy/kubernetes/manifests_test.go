package kubernetes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/handlers"
)

// decisionEndpoints are the paths a proxy's auth-url may name: handlers'
// decision endpoints, so that the example Ingress cannot name anything else.
var decisionEndpoints = []string{handlers.PathRequest, handlers.PathForward, handlers.PathEnvoy + "/"}

// pendingVariables are variables the manifests set that config does not
// read yet (none now). Once config knows one, the test fails until it is
// removed from this list.
var pendingVariables = []string{}

// Just enough of the Kubernetes API types for the checks below.
type (
	meta struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   meta   `yaml:"metadata"`
		file       string
		node       *yaml.Node
	}
	selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	handler struct {
		Exec    *struct{} `yaml:"exec"`
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"`
		} `yaml:"httpGet"`
		Sleep *struct {
			Seconds int `yaml:"seconds"`
		} `yaml:"sleep"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	containerSpec struct {
		Name  string `yaml:"name"`
		Image string `yaml:"image"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env            []envVar `yaml:"env"`
		ReadinessProbe *handler `yaml:"readinessProbe"`
		LivenessProbe  *handler `yaml:"livenessProbe"`
		StartupProbe   *handler `yaml:"startupProbe"`
		Lifecycle      *struct {
			PreStop *handler `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext *struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	}
	deployment struct {
		Spec struct {
			Replicas int      `yaml:"replicas"`
			Selector selector `yaml:"selector"`
			Template struct {
				Metadata meta `yaml:"metadata"`
				Spec     struct {
					TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
					SecurityContext               struct {
						RunAsNonRoot *bool `yaml:"runAsNonRoot"`
						RunAsUser    *int  `yaml:"runAsUser"`
					} `yaml:"securityContext"`
					Containers []containerSpec `yaml:"containers"`
					Volumes    []struct {
						Name      string `yaml:"name"`
						ConfigMap *struct {
							Name string `yaml:"name"`
						} `yaml:"configMap"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	service struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string    `yaml:"name"`
				Port       int       `yaml:"port"`
				TargetPort yaml.Node `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	pdb struct {
		Spec struct {
			MinAvailable yaml.Node `yaml:"minAvailable"`
			Selector     selector  `yaml:"selector"`
		} `yaml:"spec"`
	}
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
	ingress struct {
		Spec struct {
			Rules []struct {
				HTTP struct {
					Paths []struct {
						Backend struct {
							Service struct {
								Name string `yaml:"name"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	// policyFile is the shape of the policy file's top level.
	policyFile struct {
		Default string `yaml:"default"`
		Routes  []struct {
			Path    string   `yaml:"path"`
			Methods []string `yaml:"methods"`
			Scopes  []string `yaml:"scopes"`
			Public  bool     `yaml:"public"`
		} `yaml:"routes"`
		Headers map[string]string `yaml:"headers"`
	}
)

// manifests is every object of every YAML file in this directory.
type manifests []object

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var all manifests
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			var o object
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s, document %d: apiVersion, kind and metadata.name are required", f, i)
			}
			o.file, o.node = f, &n
			all = append(all, o)
		}
	}
	return all
}

// one returns the only object of kind (and name, if not empty) decoded
// into v.
func (m manifests) one(t *testing.T, kind, name string, v any) object {
	t.Helper()
	var found []object
	for _, o := range m {
		if o.Kind == kind && (name == "" || o.Metadata.Name == name) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s objects named %q, want 1", len(found), kind, name)
	}
	if err := found[0].node.Decode(v); err != nil {
		t.Fatalf("%s %s (%s): %v", kind, found[0].Metadata.Name, found[0].file, err)
	}
	return found[0]
}

// intOrName is a Kubernetes IntOrString.
func intOrName(n yaml.Node) (int, string) {
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p, ""
	}
	return 0, n.Value
}

// containerfile reads ENV and USER from the image's Containerfile.
func containerfile(t *testing.T) (env map[string]string, user string) {
	t.Helper()
	f, err := os.Open("../../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "ENV":
			for _, kv := range fields[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
		case "USER":
			user = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env, user
}

// nopValidator refuses every token; the router needs a validator.
type nopValidator struct{}

func (nopValidator) Validate(context.Context, []byte) (*auth.Principal, error) {
	return nil, auth.ErrNoToken
}

// served reports whether tokengate's router serves GET path.
func served(t *testing.T, path string) bool {
	t.Helper()
	s, err := handlers.New(handlers.Config{Validator: nopValidator{}})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := s.Router().Lookup(fasthttp.MethodGet, path, &fasthttp.RequestCtx{})
	return h != nil
}

func TestManifests(t *testing.T) {
	m := loadManifests(t)
	var dep deployment
	depObj := m.one(t, "Deployment", "tokengate", &dep)
	tmpl := dep.Spec.Template
	if len(tmpl.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(tmpl.Spec.Containers))
	}
	c := tmpl.Spec.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	// resolvePort finds a probe's or Service's port among the container's.
	resolvePort := func(n yaml.Node) (int, bool) {
		num, name := intOrName(n)
		if name != "" {
			p, ok := ports[name]
			return p, ok
		}
		for _, p := range ports {
			if p == num {
				return p, true
			}
		}
		return 0, false
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "from-secret-" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil:
			t.Errorf("env %s: only values and secretKeyRef are expected", e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	imageEnv, imageUser := containerfile(t)
	known := config.Variables()
	cfgEnv := func(name string) string {
		if v, ok := env[name]; ok {
			return v
		}
		return imageEnv[name]
	}
	cfg, cfgErr := config.Load(nil, cfgEnv, "")

	t.Run("replicas and selectors", func(t *testing.T) {
		if dep.Spec.Replicas != 2 {
			t.Errorf("replicas %d, want 2", dep.Spec.Replicas)
		}
		podLabels := tmpl.Metadata.Labels
		subset := func(what string, sel map[string]string) {
			if len(sel) == 0 {
				t.Errorf("%s: empty selector", what)
			}
			for k, v := range sel {
				if podLabels[k] != v {
					t.Errorf("%s selects %s=%s, which the pods do not carry", what, k, v)
				}
			}
		}
		subset("Deployment", dep.Spec.Selector.MatchLabels)
		var svc service
		m.one(t, "Service", "tokengate", &svc)
		subset("Service", svc.Spec.Selector)
		var budget pdb
		m.one(t, "PodDisruptionBudget", "", &budget)
		subset("PodDisruptionBudget", budget.Spec.Selector.MatchLabels)
		if n, _ := intOrName(budget.Spec.MinAvailable); n < 1 || n >= dep.Spec.Replicas {
			t.Errorf("PodDisruptionBudget minAvailable %q: want at least 1 and fewer than the replicas", budget.Spec.MinAvailable.Value)
		}
	})

	t.Run("ports agree with LISTEN_ADDR and the image", func(t *testing.T) {
		_, listenPort, err := net.SplitHostPort(cfgEnv("LISTEN_ADDR"))
		if err != nil {
			t.Fatalf("LISTEN_ADDR %q: %v", cfgEnv("LISTEN_ADDR"), err)
		}
		want, _ := strconv.Atoi(listenPort)
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != want {
			t.Errorf("container ports %+v, want one: %d (LISTEN_ADDR)", c.Ports, want)
		}
		var svc service
		m.one(t, "Service", "tokengate", &svc)
		for _, p := range svc.Spec.Ports {
			if got, ok := resolvePort(p.TargetPort); !ok || got != want {
				t.Errorf("Service port %s targets %q, not the container's port %d", p.Name, p.TargetPort.Value, want)
			}
		}
	})

	t.Run("probes", func(t *testing.T) {
		probes := []struct {
			name string
			h    *handler
			want string
		}{
			{"readiness", c.ReadinessProbe, "/readyz"},
			{"liveness", c.LivenessProbe, "/healthz"},
		}
		for _, p := range probes {
			if p.h == nil || p.h.HTTPGet == nil {
				t.Errorf("%s probe: want an httpGet of %s", p.name, p.want)
				continue
			}
			if p.h.HTTPGet.Path != p.want {
				t.Errorf("%s probe path %s, want %s", p.name, p.h.HTTPGet.Path, p.want)
			}
			if !served(t, p.h.HTTPGet.Path) {
				t.Errorf("%s probe path %s is not a route tokengate serves", p.name, p.h.HTTPGet.Path)
			}
			if _, ok := resolvePort(p.h.HTTPGet.Port); !ok {
				t.Errorf("%s probe port %q is not a container port", p.name, p.h.HTTPGet.Port.Value)
			}
		}
		if served(t, "/no-such-probe") {
			t.Error("the route check accepts anything")
		}
		// The image is scratch: nothing may exec a shell.
		for _, h := range []*handler{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if h != nil && h.Exec != nil {
				t.Error("an exec probe, but the image has no shell")
			}
		}
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep == nil {
			t.Error("preStop must be the native sleep action: the image has no shell")
		}
	})

	t.Run("environment", func(t *testing.T) {
		for _, e := range c.Env {
			if !slices.Contains(known, e.Name) && !slices.Contains(pendingVariables, e.Name) {
				t.Errorf("env %s is not a variable config reads", e.Name)
			}
		}
		for _, p := range pendingVariables {
			if slices.Contains(known, p) {
				t.Errorf("config now reads %s: remove it from pendingVariables", p)
			}
		}
		if cfgErr != nil {
			t.Fatalf("the Deployment's environment is not a valid configuration: %v", cfgErr)
		}
		for _, e := range c.Env {
			if e.Name == "OKTA_CLIENT_SECRET" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Error("OKTA_CLIENT_SECRET must come from a Secret, not a literal value")
			}
		}
		if _, ok := env["SHUTDOWN_DRAIN_DELAY"]; !ok || cfg.ShutdownDrainDelay == 0 {
			t.Error("SHUTDOWN_DRAIN_DELAY is not set: a stopping pod would refuse connections before its endpoint is gone")
		}
		grace := tmpl.Spec.TerminationGracePeriodSeconds
		need := cfg.ShutdownDrainDelay + cfg.ShutdownTimeout
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if grace == nil {
			t.Errorf("terminationGracePeriodSeconds not set, want more than the drain delay plus SHUTDOWN_TIMEOUT (%v)", need)
		} else if time.Duration(*grace)*time.Second <= need {
			t.Errorf("terminationGracePeriodSeconds %d, want more than the drain delay plus SHUTDOWN_TIMEOUT (%v)", *grace, need)
		}
	})

	t.Run("security and resources", func(t *testing.T) {
		sc := c.SecurityContext
		isTrue := func(b *bool) bool { return b != nil && *b }
		if sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) || !isTrue(sc.RunAsNonRoot) ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container securityContext %+v: want readOnlyRootFilesystem, runAsNonRoot, no privilege escalation, drop ALL", sc)
		}
		if uid := tmpl.Spec.SecurityContext.RunAsUser; uid != nil {
			if want, _, _ := strings.Cut(imageUser, ":"); strconv.Itoa(*uid) != want {
				t.Errorf("runAsUser %d, but the image's USER is %s", *uid, imageUser)
			}
		}
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
				t.Errorf("%s request or limit missing", r)
			}
		}
	})

	t.Run("policy ConfigMap", func(t *testing.T) {
		file := env["POLICY_FILE"]
		if file == "" {
			t.Fatal("POLICY_FILE is not set")
		}
		dir, key := path.Split(file)
		var cmName string
		for _, vm := range c.VolumeMounts {
			if strings.TrimSuffix(vm.MountPath, "/")+"/" != dir {
				continue
			}
			if vm.SubPath != "" {
				t.Error("the policy is mounted with subPath: ConfigMap edits would never reach the pod")
			}
			for _, v := range tmpl.Spec.Volumes {
				if v.Name == vm.Name && v.ConfigMap != nil {
					cmName = v.ConfigMap.Name
				}
			}
		}
		if cmName == "" {
			t.Fatalf("no ConfigMap volume is mounted at %s", dir)
		}
		var cm configMap
		m.one(t, "ConfigMap", cmName, &cm)
		var p policyFile
		dec := yaml.NewDecoder(strings.NewReader(cm.Data[key]))
		dec.KnownFields(true)
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("ConfigMap %s key %s: %v", cmName, key, err)
		}
		if p.Default != "deny" || len(p.Routes) == 0 || len(p.Headers) == 0 {
			t.Errorf("policy %+v: want default deny, routes and headers", p)
		}
		for _, r := range p.Routes {
			if !r.Public && len(r.Scopes) == 0 {
				t.Errorf("route %s is neither public nor scoped", r.Path)
			}
		}
	})

	t.Run("ingress asks a decision endpoint of tokengate", func(t *testing.T) {
		var ing ingress
		o := m.one(t, "Ingress", "", &ing)
		authURL := o.Metadata.Annotations["nginx.ingress.kubernetes.io/auth-url"]
		u, err := url.Parse(authURL)
		if err != nil {
			t.Fatalf("auth-url %q: %v", authURL, err)
		}
		if !slices.Contains(decisionEndpoints, u.Path) {
			t.Errorf("auth-url path %s is not a decision endpoint %v", u.Path, decisionEndpoints)
		}
		var svc service
		svcObj := m.one(t, "Service", "tokengate", &svc)
		wantHost := fmt.Sprintf("%s.%s.svc.cluster.local", svcObj.Metadata.Name, svcObj.Metadata.Namespace)
		if u.Hostname() != wantHost || u.Port() != strconv.Itoa(svc.Spec.Ports[0].Port) {
			t.Errorf("auth-url %s does not name the Service %s:%d", authURL, wantHost, svc.Spec.Ports[0].Port)
		}
		if u.Scheme != "http" {
			t.Errorf("auth-url scheme %s: tokengate serves plain HTTP in these manifests", u.Scheme)
		}
		var p policyFile
		var cm configMap
		m.one(t, "ConfigMap", "tokengate-policy", &cm)
		if err := yaml.Unmarshal([]byte(cm.Data["policy.yaml"]), &p); err != nil {
			t.Fatal(err)
		}
		for _, h := range strings.Split(o.Metadata.Annotations["nginx.ingress.kubernetes.io/auth-response-headers"], ",") {
			if _, ok := p.Headers[strings.TrimSpace(h)]; !ok {
				t.Errorf("auth-response-headers names %s, which the policy never sets", h)
			}
		}
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if p.Backend.Service.Name == depObj.Metadata.Name {
					t.Error("the example Ingress routes to tokengate itself; it should protect another service")
				}
			}
		}
		if o.Metadata.Namespace == depObj.Metadata.Namespace {
			t.Error("the protected service should live in its own namespace")
		}
	})
}
