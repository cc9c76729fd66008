// A tiny validating admission webhook for Coracle's end-to-end tests (tests/Node.Tests/Node/EgressTests.cs): it denies
// every object labelled coracle-test/deny=true and allows the rest, over HTTPS with the certificate the test mounts.
// Built by the test with Debian's golang-go: CGO_ENABLED=0 go build -o webhook main.go (static, standard library only).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
)

type review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *request  `json:"request,omitempty"`
	Response   *response `json:"response,omitempty"`
}

type request struct {
	UID    string          `json:"uid"`
	Object json.RawMessage `json:"object"`
}

type response struct {
	UID     string  `json:"uid"`
	Allowed bool    `json:"allowed"`
	Result  *status `json:"status,omitempty"`
}

type status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func main() {
	listen := flag.String("listen", ":8443", "address to serve HTTPS on")
	cert := flag.String("cert", "/tls/tls.crt", "serving certificate (PEM)")
	key := flag.String("key", "/tls/tls.key", "serving key (PEM)")
	label := flag.String("deny-label", "coracle-test/deny", "objects with this label set to true are denied")
	flag.Parse()

	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	http.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var in review
		if err == nil {
			err = json.Unmarshal(body, &in)
		}
		if err != nil || in.Request == nil {
			http.Error(w, "expected an AdmissionReview with a request", http.StatusBadRequest)
			return
		}
		var object struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(in.Request.Object, &object)
		answer := &response{UID: in.Request.UID, Allowed: true}
		if object.Metadata.Labels[*label] == "true" {
			answer.Allowed = false
			answer.Result = &status{Code: http.StatusForbidden, Message: fmt.Sprintf("denied by the coracle test webhook: %s has %s=true", object.Metadata.Name, *label)}
		}
		log.Printf("review %s of %s: allowed=%v", in.Request.UID, object.Metadata.Name, answer.Allowed)
		out, _ := json.Marshal(review{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview", Response: answer})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	log.Printf("serving on %s", *listen)
	log.Fatal(http.ListenAndServeTLS(*listen, *cert, *key, nil))
}
