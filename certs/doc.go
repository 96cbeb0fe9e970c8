// Package certs manages loomguard's serving certificate when loomguard issues it itself
// (`loomguard serve --cert-mode=self-managed`).
//
// The state lives in one Secret (default loomguard-system/loomguard-tls), which ships
// empty with the manifests so that loomguard never needs to create Secrets:
//
//	ca.crt, ca.key            the CA that signs the serving certificate
//	ca-next.crt, ca-next.key  the CA that will take over, published ahead of time
//	ca-previous.crt           the CA that was replaced, trusted until it expires
//	tls.crt, tls.key          the serving certificate for the Service's DNS names
//
// The caBundle injected into the webhook configurations is every unexpired CA of the
// Secret, so that a CA rotation never leaves the API server without the CA of the
// certificate a replica serves: the next CA is in the bundle for a whole serving
// certificate's validity before it signs anything, and the previous one stays until it
// expires.
//
// Three parts, each a controller-runtime Runnable or a step before the server starts:
//
//   - Bootstrap (every replica, before serving): if the Secret holds no usable serving
//     certificate, issue one and write it with an optimistic-concurrency update (on a
//     conflict another replica won, and its certificate is used); then write tls.crt and
//     tls.key to the certificate directory. This is the only write a non-leader may make,
//     and only when no replica could serve at all.
//   - Rotator (the leader only): renews the serving certificate when RenewBefore is left,
//     rotates the CA in the two steps above, and keeps the caBundle of the mutating and
//     validating webhook configurations equal to the Secret's CAs.
//   - Syncer (every replica): copies the Secret's tls.crt and tls.key into the
//     certificate directory whenever they change; the webhook server's certificate
//     watcher reloads them without a restart.
//
// Every object is read through a watch on exactly one name (a metadata.name field
// selector), so RBAC can grant get, list, watch and update on those names only.
package certs
