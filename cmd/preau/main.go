// Command preau is the school edge server. It only hands its arguments to
// package appliance, which does the work.
package main

import (
	"os"

	"preau/appliance"
)

func main() {
	os.Exit(appliance.Main(os.Args[1:], os.Stdout, os.Stderr))
}
