// Command runc-capdrop is the runc wrapper of package capdrop, built on its own: the e2e
// rig builds it (stdlib only, in a throwaway module laid out as this repository is) for its
// dockerd and Podman and for the kind node image. See capdrop's doc.
package main

import (
	"os"

	"github.com/apimdev/apimdev/scripts/ci/runc-capdrop/capdrop"
)

func main() { os.Exit(capdrop.Main(os.Args[1:])) }
