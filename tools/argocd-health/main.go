// argocd-health: evaluates an Argo CD Lua health check with Argo CD's own code
// (github.com/argoproj/argo-cd/v3/util/lua and gitops-engine's pkg/health), built by
// scripts/conformance-tools.sh from the Go module proxy.
//
//	argocd-health test DIR [CONFIGMAP]
//	    DIR is a folder in Argo CD's layout for built-in checks (health.lua, health_test.yaml,
//	    testdata/). Every case of health_test.yaml is evaluated as Argo CD's own
//	    TestLuaHealthScript does (util/lua VM with the standard libraries, the result compared
//	    whole: status, message, deletionMessage). With CONFIGMAP (an argocd-cm manifest holding
//	    resource.customizations.health.<group>_<Kind>), each case is evaluated a second time the
//	    way the application controller does for a configured check: ResourceHealthOverrides (no
//	    open libraries) under health.GetResourceHealth, which also applies Argo CD's rule for
//	    objects being deleted. Prints one line per case and exits 1 on any mismatch.
//
//	argocd-health eval SCRIPT
//	    Reads one object (JSON or YAML) on stdin, evaluates SCRIPT on it as a configured check
//	    under health.GetResourceHealth, and prints {"status":...,"message":...}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argolua "github.com/argoproj/argo-cd/v3/util/lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The shape of health_test.yaml in Argo CD's resource_customizations.
type testFile struct {
	Tests []struct {
		InputPath    string               `json:"inputPath"`
		HealthStatus *health.HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

const healthPrefix = "resource.customizations.health."

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "test" && len(os.Args) <= 4 {
		cm := ""
		if len(os.Args) == 4 {
			cm = os.Args[3]
		}
		os.Exit(runTests(os.Args[2], cm))
	}
	if len(os.Args) == 3 && os.Args[1] == "eval" {
		os.Exit(eval(os.Args[2]))
	}
	fmt.Fprintln(os.Stderr, "usage: argocd-health test DIR [CONFIGMAP] | argocd-health eval SCRIPT < object")
	os.Exit(2)
}

func runTests(dir, configMap string) int {
	script := mustRead(filepath.Join(dir, "health.lua"))
	var tf testFile
	if err := yaml.Unmarshal([]byte(mustRead(filepath.Join(dir, "health_test.yaml"))), &tf); err != nil {
		die("health_test.yaml: %v", err)
	}
	if len(tf.Tests) == 0 {
		die("health_test.yaml has no tests")
	}
	var overrides argolua.ResourceHealthOverrides
	if configMap != "" {
		overrides = configMapOverrides(configMap)
	}
	mismatches := 0
	for _, tc := range tf.Tests {
		// As Argo CD's TestLuaHealthScript reads testdata: sigs.k8s.io/yaml into a map.
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(mustRead(filepath.Join(dir, tc.InputPath))), &obj); err != nil {
			die("%s: %v", tc.InputPath, err)
		}
		u := &unstructured.Unstructured{Object: obj}

		vm := argolua.VM{UseOpenLibs: true}
		got, err := vm.ExecuteHealthLua(u, script)
		mismatches += report("built-in", tc.InputPath, tc.HealthStatus, got, err)

		if overrides != nil {
			if _, ok := overrides[argolua.GetConfigMapKey(u.GroupVersionKind())]; !ok {
				die("%s: %s has no health check for %s", tc.InputPath, configMap, argolua.GetConfigMapKey(u.GroupVersionKind()))
			}
			// What the application controller shows: a check that sets deletionMessage on a
			// terminating object shows it as the message.
			want := &health.HealthStatus{Status: tc.HealthStatus.Status, Message: tc.HealthStatus.Message}
			if u.GetDeletionTimestamp() != nil && tc.HealthStatus.DeletionMessage != "" {
				want.Message = tc.HealthStatus.DeletionMessage
			}
			got, err := health.GetResourceHealth(u, overrides)
			mismatches += report("argocd-cm", tc.InputPath, want, got, err)
		}
	}
	fmt.Printf("argocd-health: %d cases, %d mismatches\n", len(tf.Tests), mismatches)
	if mismatches > 0 {
		return 1
	}
	return 0
}

func report(how, path string, want, got *health.HealthStatus, err error) int {
	if err == nil && got != nil && *got == *want {
		fmt.Printf("ok   %-9s %s: %s\n", how, path, show(got))
		return 0
	}
	if err != nil {
		fmt.Printf("FAIL %-9s %s: error %v (want %s)\n", how, path, err, show(want))
	} else {
		fmt.Printf("FAIL %-9s %s: got %s, want %s\n", how, path, show(got), show(want))
	}
	return 1
}

func show(h *health.HealthStatus) string {
	if h == nil {
		return "<no health>"
	}
	b, _ := json.Marshal(h)
	return string(b)
}

// configMapOverrides reads the health checks of an argocd-cm manifest as Argo CD's settings do:
// the key resource.customizations.health.<group>_<Kind> names the check of <group>/<Kind>.
func configMapOverrides(path string) argolua.ResourceHealthOverrides {
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(mustRead(path)), &cm); err != nil {
		die("%s: %v", path, err)
	}
	overrides := argolua.ResourceHealthOverrides{}
	for k, v := range cm.Data {
		if gk, ok := strings.CutPrefix(k, healthPrefix); ok {
			overrides[strings.Replace(gk, "_", "/", 1)] = v1alpha1.ResourceOverride{HealthLua: v}
		}
	}
	if len(overrides) == 0 {
		die("%s has no %s* key", path, healthPrefix)
	}
	return overrides
}

func eval(scriptPath string) int {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		die("reading stdin: %v", err)
	}
	js, err := yaml.YAMLToJSON(input)
	if err != nil {
		die("parsing the object: %v", err)
	}
	// The unstructured decoder keeps integers as int64, as the application controller sees them.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		die("parsing the object: %v", err)
	}
	overrides := argolua.ResourceHealthOverrides{
		argolua.GetConfigMapKey(u.GroupVersionKind()): v1alpha1.ResourceOverride{HealthLua: mustRead(scriptPath)},
	}
	got, err := health.GetResourceHealth(u, overrides)
	if err != nil {
		die("%v", err)
	}
	if got == nil {
		die("the check returned no health")
	}
	out, _ := json.Marshal(map[string]string{"status": string(got.Status), "message": got.Message})
	fmt.Println(string(out))
	return 0
}

func mustRead(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	return string(b)
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "argocd-health: "+format+"\n", args...)
	os.Exit(2)
}
