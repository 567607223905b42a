//! A timestamp authority that is not ours: OpenSSL's `openssl ts -reply`,
//! with a P-384 time-stamping certificate under a P-256 root made by
//! `openssl req`/`openssl x509` in a temp dir. Its tokens are an
//! independent oracle for criguard's RFC 3161 parser and checks, next to
//! [`crate::tsa::TestTsa`], whose tokens the tests assemble themselves.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::process::run_ok;
use crate::tsa::authority_entry;

/// The authority's configuration: SHA-256 signer digest (as the public
/// Sigstore TSA signs with a P-384 key), Sigstore's TSA policy OID, the
/// signer's certificate in the token (the query asks for it).
const CONFIG: &str = "\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = ./serial
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
ess_cert_id_alg = sha256
[ v3_tsa ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
";

/// An OpenSSL timestamp authority whose certificates are valid for a day
/// from now.
pub struct OpensslTsa {
    dir: tempfile::TempDir,
    leaf_der: Vec<u8>,
    root_der: Vec<u8>,
}

impl Default for OpensslTsa {
    fn default() -> Self {
        Self::new()
    }
}

impl OpensslTsa {
    pub fn new() -> OpensslTsa {
        let dir = tempfile::tempdir().expect("temp dir for the OpenSSL TSA");
        let path = dir.path();
        std::fs::write(path.join("tsa.cnf"), CONFIG).expect("TSA config");
        std::fs::write(path.join("serial"), "01\n").expect("TSA serial");
        openssl(
            path,
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
             -out ca.pem -subj /CN=openssl-test-TSA-root -days 1",
        );
        openssl(
            path,
            "req -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout tsa.key \
             -out tsa.csr -subj /CN=openssl-test-TSA",
        );
        openssl(
            path,
            "x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tsa.pem \
             -days 1 -extfile tsa.cnf -extensions v3_tsa",
        );
        let der = |name: &str| {
            openssl(path, &format!("x509 -in {name} -outform DER -out out.der"));
            std::fs::read(path.join("out.der")).expect("DER certificate")
        };
        OpensslTsa {
            leaf_der: der("tsa.pem"),
            root_der: der("ca.pem"),
            dir,
        }
    }

    /// The `timestampAuthorities` item of a trusted root naming this
    /// authority (leaf, then root).
    pub fn trusted_root_entry(&self) -> Value {
        authority_entry("openssl-tsa.test", &self.leaf_der, &self.root_der)
    }

    /// The whole `TimeStampResp` over SHA-256(`data`), timestamped now.
    pub fn response(&self, data: &[u8]) -> Vec<u8> {
        self.reply(data, false)
    }

    /// The bare `TimeStampToken` over SHA-256(`data`).
    pub fn token(&self, data: &[u8]) -> Vec<u8> {
        self.reply(data, true)
    }

    fn reply(&self, data: &[u8], token_only: bool) -> Vec<u8> {
        let path = self.dir.path();
        std::fs::write(path.join("data"), data).expect("data to timestamp");
        openssl(path, "ts -query -data data -sha256 -cert -out req.tsq");
        let token_out = if token_only { " -token_out" } else { "" };
        openssl(
            path,
            &format!(
                "ts -reply -config tsa.cnf -section tsa_config -queryfile req.tsq \
                 -signer tsa.pem -inkey tsa.key -out reply.der{token_out}"
            ),
        );
        std::fs::read(path.join("reply.der")).expect("the TSA's reply")
    }
}

/// Runs `openssl` in `dir` with `args`, split at white space (no argument
/// here holds any).
fn openssl(dir: &Path, args: &str) {
    run_ok(
        Command::new("openssl")
            .current_dir(dir)
            .args(args.split_whitespace()),
    );
}
