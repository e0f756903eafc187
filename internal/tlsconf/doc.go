// Package tlsconf builds the broker's TLS layer from a listener's
// mosquitto.conf options (SPEC §3, §4).
//
// A [Server] holds, per listener, the certificates, CAs and CRLs loaded
// from the configured files, swapped atomically as one immutable snapshot.
// Every handshake picks its configuration from the snapshot current at
// that moment (tls.Config.GetConfigForClient), so files can change under
// a running broker without a restart and without touching established
// connections:
//
//   - SNI: certfile/keyfile may be repeated; the certificate whose DNS SANs
//     (or CN, when it has no DNS SAN) match the client's SNI is presented,
//     the first pair otherwise.
//   - Client certificates: require_certificate verifies them against
//     cafile/capath; cafile alone verifies one when the client sends it.
//     Revocation is checked in VerifyConnection, which also runs for
//     resumed sessions, against every crlfile and crl_url.
//   - Files are watched (their directories, so atomic renames and symlink
//     swaps count) and reloaded after a short quiet period, and on
//     [Server.Reload] (SIGHUP). A new file that does not load leaves the
//     old one in service, and the reason is logged.
//   - When the CRLs change, connections whose certificate is now revoked
//     are closed through Options.Disconnect.
//   - [Server.NewListener] completes each handshake before handing the
//     connection to the broker, logs every failure once with the client
//     address, the SNI and the reason in words, and counts it by reason
//     ([Stats]).
//
// Go's crypto/tls has no TLS-PSK: a listener with psk_hint is served by
// [PSKServer] on mamori's own package tlspsk instead ([New] refuses it).
package tlsconf
