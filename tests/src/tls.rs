//! Certificates made at test time with `rcgen`: a CA, a server certificate for `localhost` and
//! `127.0.0.1`, a client certificate for mTLS, and a second, unrelated CA with its own client
//! certificate for negative tests. All keys are ECDSA P-256, written as PEM (keys as PKCS#8).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The host name the server certificate is issued for (it also covers IP 127.0.0.1).
pub const SERVER_NAME: &str = "localhost";

/// PEM files for a TLS test server and its clients, all inside one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The directory holding every file below.
    pub dir: PathBuf,
    /// The CA certificate that signed the server and client certificates: the root a client
    /// trusts, and the `ca_file` the server verifies client certificates against.
    pub ca: PathBuf,
    /// The server certificate (SAN `localhost` and IP 127.0.0.1), signed by [`ca`](Self::ca).
    pub server_cert: PathBuf,
    /// The server certificate's private key.
    pub server_key: PathBuf,
    /// A client certificate signed by [`ca`](Self::ca), accepted by mTLS servers.
    pub client_cert: PathBuf,
    /// The client certificate's private key.
    pub client_key: PathBuf,
    /// A different CA that signed nothing the server uses: a client trusting only this one must
    /// fail to verify the server.
    pub untrusted_ca: PathBuf,
    /// A client certificate signed by [`untrusted_ca`](Self::untrusted_ca): mTLS servers must
    /// reject it.
    pub untrusted_client_cert: PathBuf,
    /// The untrusted client certificate's private key.
    pub untrusted_client_key: PathBuf,
}

impl TlsFiles {
    /// Generates a fresh set of certificates and keys into `dir` (created if missing).
    ///
    /// # Panics
    /// When key generation, signing or writing a file fails.
    #[track_caller]
    pub fn generate(dir: &Path) -> TlsFiles {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let files = TlsFiles {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server-cert.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client-cert.pem"),
            client_key: dir.join("client-key.pem"),
            untrusted_ca: dir.join("untrusted-ca.pem"),
            untrusted_client_cert: dir.join("untrusted-client-cert.pem"),
            untrusted_client_key: dir.join("untrusted-client-key.pem"),
        };

        let ca = new_ca("nats-tests CA", &files.ca);
        leaf(
            &ca,
            "localhost",
            vec![SERVER_NAME.to_string(), "127.0.0.1".to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
            (&files.server_cert, &files.server_key),
        );
        leaf(
            &ca,
            "nats-tests client",
            vec!["client.nats-tests.invalid".to_string()],
            ExtendedKeyUsagePurpose::ClientAuth,
            (&files.client_cert, &files.client_key),
        );

        let untrusted = new_ca("nats-tests untrusted CA", &files.untrusted_ca);
        leaf(
            &untrusted,
            "nats-tests untrusted client",
            vec!["untrusted.nats-tests.invalid".to_string()],
            ExtendedKeyUsagePurpose::ClientAuth,
            (&files.untrusted_client_cert, &files.untrusted_client_key),
        );
        files
    }
}

fn new_ca(common_name: &str, cert_path: &Path) -> Issuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = generate_key();
    let cert = params
        .self_signed(&key)
        .unwrap_or_else(|e| panic!("cannot self-sign the {common_name} certificate: {e}"));
    write(cert_path, &cert.pem());
    Issuer::new(params, key)
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    common_name: &str,
    subject_alt_names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    (cert_path, key_path): (&Path, &Path),
) {
    let mut params = CertificateParams::new(subject_alt_names)
        .unwrap_or_else(|e| panic!("invalid subject alt names for {common_name}: {e}"));
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = generate_key();
    let cert = params
        .signed_by(&key, issuer)
        .unwrap_or_else(|e| panic!("cannot sign the {common_name} certificate: {e}"));
    write(cert_path, &cert.pem());
    write(key_path, &key.serialize_pem());
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn generate_key() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|e| panic!("cannot generate a key pair: {e}"))
}

fn write(path: &Path, pem: &str) {
    std::fs::write(path, pem).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_every_file_as_pem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = TlsFiles::generate(dir.path());
        for (path, marker) in [
            (&files.ca, "CERTIFICATE"),
            (&files.server_cert, "CERTIFICATE"),
            (&files.server_key, "PRIVATE KEY"),
            (&files.client_cert, "CERTIFICATE"),
            (&files.client_key, "PRIVATE KEY"),
            (&files.untrusted_ca, "CERTIFICATE"),
            (&files.untrusted_client_cert, "CERTIFICATE"),
            (&files.untrusted_client_key, "PRIVATE KEY"),
        ] {
            let text = std::fs::read_to_string(path).expect("read");
            assert!(
                text.contains(&format!("-----BEGIN {marker}-----")),
                "{}",
                path.display()
            );
        }
        assert_ne!(
            std::fs::read(&files.ca).expect("ca"),
            std::fs::read(&files.untrusted_ca).expect("untrusted")
        );
    }
}
