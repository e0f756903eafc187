// Package config reads Mosquitto 2.x configuration files (mosquitto.conf)
// unchanged and turns them into a typed [Config] for the broker and the TLS
// layer.
//
// Reading happens in two layers. [Lex] splits a file into [Line]s of
// [Token]s that carry their position (file, line, column); the parser then
// applies each line to a [Config] with Mosquitto's scoping rules: options
// before the first `listener` configure the default listener, `listener`
// starts a new one, `per_listener_settings true` moves authentication options
// into each listener, and `include_dir` reads `*.conf` files in Mosquitto's
// order. Every problem is collected into [Errors], one line each, naming
// file:line and the option, so that a user sees everything that is wrong in
// one run and nothing starts on a broken configuration. Options that mamori
// accepts but cannot honour exactly produce one [Warning] each.
//
// [Validate] checks the rules that span several options (a keyfile without a
// certfile, require_certificate without a CA, duplicate listeners, ...);
// [Load] and [Parse] call it. [Diff] compares two configurations for SIGHUP.
//
// The README next to this file lists every option, its scope and how mamori
// honours it.
package config
