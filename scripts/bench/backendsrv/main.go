// Command backendsrv is the bench's backend: the same small program runs on
// the laptop (behind `apimdev backend add --to`) and as a pod (behind
// `apimdev backend add --image`). GET answers a small body; POST /upload
// reads the whole body and answers its length and sha256.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/upload" {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "backendsrv ok\n")
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
