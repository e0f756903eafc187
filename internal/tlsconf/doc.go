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
//     resumed sessions, against every crlfile and crl_url. A CRL is put in
//     service only once its signature verifies with its issuer (in
//     cafile/capath, or a CA of a certfile chain that leads there); a
//     forged or unverifiable one is rejected loudly and the last good one
//     stays. With Options.CRLCacheDir, the last verified CRL of each
//     crl_url is kept for the next start, so a restart while the URL does
//     not answer does not switch its revocations off.
//   - Files are watched (their directories, so atomic renames and symlink
//     swaps count, but only events on the files and their link chains)
//     and reloaded after a short quiet period, at most a second after the
//     first event, and on [Server.Reload] (SIGHUP). A new file that does
//     not load leaves the old one in service, and the reason is logged
//     once per content and error.
//   - When the CRLs or the CAs change, connections whose certificate is
//     now revoked or no longer trusted are closed through
//     Options.Disconnect.
//   - [Server.NewListener] completes each handshake before handing the
//     connection to the broker, logs every failure once with the client
//     address, the SNI and the reason in words (at most a few a minute per
//     address), and counts it by reason ([Stats]). Handshakes in progress
//     are bounded per address and per listener by closing the oldest, so
//     silent connections cannot lock a listener; accepting never stops.
//
// Go's crypto/tls has no TLS-PSK: a listener with psk_hint is served by
// [PSKServer] on mamori's own package tlspsk instead ([New] refuses it).
package tlsconf
