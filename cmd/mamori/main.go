// Command mamori is an MQTT broker and toolkit for people who run MQTT over
// TLS. Invoked as mosquitto, mosquitto_pub, mosquitto_sub, mosquitto_rr or
// mosquitto_passwd (through a symlink) it behaves as that program.
package main

import (
	"os"

	"github.com/mamori-mqtt/mamori/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
