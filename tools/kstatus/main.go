// kstatus: prints what sigs.k8s.io/cli-utils/pkg/kstatus/status computes for one object.
//
// The object is read as JSON (or YAML) on stdin, e.g. `kubectl get redisinstance NAME -o json`.
// The answer is one line of JSON on stdout:
//
//	{"status":"InProgress","message":"...","conditions":[{"type":"Reconciling",...}]}
//
// Built by scripts/conformance-tools.sh from the Go module proxy; the computation is kstatus's own
// (status.Compute), nothing here interprets the object.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type answer struct {
	Status     string      `json:"status"`
	Message    string      `json:"message"`
	Conditions []condition `json:"conditions"`
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	js, err := yaml.YAMLToJSON(input)
	if err != nil {
		fail("parsing the object: %v", err)
	}
	// The unstructured decoder keeps integers as int64, as the apiserver's clients see them.
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		fail("parsing the object: %v", err)
	}
	res, err := status.Compute(obj)
	if err != nil {
		fail("%v", err)
	}
	out := answer{Status: res.Status.String(), Message: res.Message, Conditions: []condition{}}
	for _, c := range res.Conditions {
		out.Conditions = append(out.Conditions, condition{
			Type: c.Type.String(), Status: string(c.Status), Reason: c.Reason, Message: c.Message,
		})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("writing the answer: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(2)
}
