// Package kit owns the offline workshop kit: one tar holding the kind node
// image, the gateway image (pinned tag), the statsd exporter image, the
// demo's stand-in image when asked, and apimdev's configuration (never a
// token, never a path), described by manifest.json with a SHA-256 for
// every file, and signed.
//
// A kit's entries, in this order, and nothing else:
//
//	manifest.json          the manifest: every image (role, ref, image ID, file, size, SHA-256) and the configuration's
//	manifest.json.minisig  minisign's signature of manifest.json's exact bytes (prehashed Ed25519), when signed
//	signer.pub             the signer's public key, minisign's .pub format, when signed
//	SHA256SUMS             the manifest's checksums for `sha256sum -c`
//	apimdev.yaml           the configuration, when there is one
//	images/<role>.tar      one `docker save` archive per image, naming exactly the manifest's ref for it
//
// Because the manifest carries the SHA-256 of every other file, its
// signature covers the whole kit: `tar xf kit.tar manifest.json
// manifest.json.minisig && minisign -Vm manifest.json -P <public key>`
// checks it with minisign itself, then `sha256sum -c SHA256SUMS` the rest.
// A key is trusted by its fingerprint (Fingerprint: "SHA256:" and the
// unpadded base64 of the SHA-256 of the public key's bytes), its .pub file
// or its key string; KeyGen makes a key pair (the secret key 0600 and
// password-protected as minisign's are, unless asked not to be).
//
// Open (and Verify, and Load) reads a kit in this order, and refuses it at
// the first problem, before anything reaches the engine: the tar's layout
// (the manifest first; no name twice, no name the manifest does not list,
// no link, directory, absolute or .. name), the signature (a signature
// that does not verify is refused whatever is trusted), the trust (an
// unsigned kit, or one signed by a key not trusted, is refused with what
// it would do on the machine; Trust.AllowUnsigned lets only an unsigned
// kit through), the configuration (decoded strictly; a kit never sets a
// path, nor cluster.mergeKubeconfig), then every byte against the
// checksums and the names each image archive gives (docker-archive
// RepoTags, the legacy repositories file, OCI index.json annotations)
// against the manifest's refs.
//
// Create saves images from the local Docker engine (docker save), signed
// with Creator.Key; Load loads each image that Docker does not already
// hold (docker load) from the same open file it verified, and when it
// fails part-way, puts back every name it had moved off the user's own
// images (ImageTag). Progress, with percentages, is reported through a
// Progress function so the event stream can show it.
//
// It talks to Docker only through its Docker interface and must not import
// cli, tui or pipeline.
package kit
