package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
)

// Run executes the scenario cfg describes and returns what it measured.
// It returns an error only when the run could not take place (bad
// configuration, a connection refused during setup); problems during the
// run are listed in Result.Errors.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Version == 0 {
		cfg.Version = cfg.version()
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	// A random tag keeps runs apart: a later run neither receives an
	// earlier run's messages nor takes over its client identifiers.
	tag := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	if cfg.Topic == "" {
		cfg.Topic = "mamori-bench/" + tag
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("mb%d-%s-", os.Getpid(), tag)
	}
	res := &Result{Scenario: cfg.Scenario, Label: cfg.Label, Protocol: cfg.Version.String(), QoS: int(cfg.QoS)}
	if cfg.TLS != nil {
		res.TLS = "TLS"
		if cfg.TLS.MinVersion != 0 && cfg.TLS.MinVersion == cfg.TLS.MaxVersion {
			res.TLS = tls.VersionName(cfg.TLS.MinVersion)
		}
	}
	var err error
	switch cfg.Scenario {
	case Conn:
		err = runConn(ctx, &cfg, res)
	case Idle:
		err = runIdle(ctx, &cfg, res)
	default:
		err = runFlow(ctx, &cfg, res)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}
