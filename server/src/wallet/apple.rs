//! Apple Wallet passes (`.pkpass`): `pass.json` and the images, `manifest.json` (the SHA-1 of
//! every file), and `signature`, a detached PKCS #7 (CMS) signature of the manifest made with
//! the pass type certificate's key, carrying that certificate and Apple's WWDR intermediate.
//!
//! The CMS structure is written with the RustCrypto `cms` types and signed with ring (RSA
//! PKCS #1 v1.5, SHA-256): what `openssl cms -sign -binary -certfile wwdr.pem` makes.

use std::io::Write;

use base64::Engine;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode};
use ring::signature::RsaKeyPair;
use serde_json::Value;
use sha1::Digest as _;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

use tessera_domain::pass::{PassError, check_apple_image, check_apple_image_set};

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// The media type a pass is served with.
pub const PKPASS_MEDIA_TYPE: &str = "application/vnd.apple.pkpass";

/// Why a pass could not be made or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppleWalletError {
    /// The operator's certificate, key or WWDR file.
    #[error("{what}: {reason}")]
    BadCredential { what: String, reason: String },
    #[error(transparent)]
    Pass(#[from] PassError),
    #[error("building the pass: {0}")]
    Build(String),
}

fn bad(what: &str, reason: impl ToString) -> AppleWalletError {
    AppleWalletError::BadCredential {
        what: what.into(),
        reason: reason.to_string(),
    }
}

fn build(e: impl ToString) -> AppleWalletError {
    AppleWalletError::Build(e.to_string())
}

/// The pass type certificate, its key and Apple's WWDR intermediate: signs manifests.
pub struct PassSigner {
    certificate: Certificate,
    wwdr: Certificate,
    key: RsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for PassSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassSigner")
            .field(
                "subject",
                &self.certificate.tbs_certificate.subject.to_string(),
            )
            .finish_non_exhaustive()
    }
}

impl PassSigner {
    /// `certificate_pem`: the pass type certificate; `key_pem`: its RSA key (PKCS #8:
    /// `openssl pkcs12 -in pass.p12 -nocerts -nodes | openssl pkcs8 -topk8 -nocrypt`);
    /// `wwdr_pem`: Apple's WWDR intermediate that issued it.
    pub fn from_pem(
        certificate_pem: &str,
        key_pem: &str,
        wwdr_pem: &str,
    ) -> Result<Self, AppleWalletError> {
        use der::DecodePem;
        let certificate = Certificate::from_pem(certificate_pem.as_bytes())
            .map_err(|e| bad("pass type certificate", e))?;
        let wwdr =
            Certificate::from_pem(wwdr_pem.as_bytes()).map_err(|e| bad("WWDR certificate", e))?;
        let (label, key_der) =
            der::pem::decode_vec(key_pem.as_bytes()).map_err(|e| bad("pass type key", e))?;
        if label != "PRIVATE KEY" {
            return Err(bad(
                "pass type key",
                format!("a PKCS #8 `PRIVATE KEY`, not `{label}`"),
            ));
        }
        let key = RsaKeyPair::from_pkcs8(&key_der).map_err(|e| bad("pass type key", e))?;
        // The key must be the certificate's.
        let spki = certificate
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        if spki != ring::signature::KeyPair::public_key(&key).as_ref() {
            return Err(bad(
                "pass type key",
                "not the key of the pass type certificate",
            ));
        }
        if certificate.tbs_certificate.issuer != wwdr.tbs_certificate.subject {
            return Err(bad(
                "WWDR certificate",
                "did not issue the pass type certificate",
            ));
        }
        Ok(PassSigner {
            certificate,
            wwdr,
            key,
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// The pass type identifier the certificate is for (its user id, `pass.…`), if it names one.
    pub fn pass_type_id(&self) -> Option<String> {
        const UID: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.1");
        self.certificate
            .tbs_certificate
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == UID)
            .and_then(|atv| {
                der::asn1::Utf8StringRef::try_from(&atv.value)
                    .map(|s| s.as_str().to_owned())
                    .or_else(|_| {
                        der::asn1::PrintableStringRef::try_from(&atv.value)
                            .map(|s| s.as_str().to_owned())
                    })
                    .ok()
            })
    }

    /// A detached CMS `SignedData` (DER) over `content`, signed at `now_s`.
    pub fn sign_detached(&self, content: &[u8], now_s: i64) -> Result<Vec<u8>, AppleWalletError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, content);
        let attribute = |oid, value: Any| -> Result<Attribute, AppleWalletError> {
            Ok(Attribute {
                oid,
                values: SetOfVec::try_from(vec![value]).map_err(build)?,
            })
        };
        let signing_time = UtcTime::from_unix_duration(std::time::Duration::from_secs(
            u64::try_from(now_s).map_err(build)?,
        ))
        .map_err(build)?;
        let signed_attrs = SetOfVec::try_from(vec![
            attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA).map_err(build)?)?,
            attribute(
                ID_SIGNING_TIME,
                Any::encode_from(&signing_time).map_err(build)?,
            )?,
            attribute(
                ID_MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(digest.as_ref()).map_err(build)?)
                    .map_err(build)?,
            )?,
        ])
        .map_err(build)?;
        // The signature covers the DER of the attributes as a SET (RFC 5652 §5.4).
        let to_sign = signed_attrs.to_der().map_err(build)?;
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &self.rng,
                &to_sign,
                &mut signature,
            )
            .map_err(|_| build("RSA signing failed"))?;
        let sha256 = AlgorithmIdentifierOwned {
            oid: ID_SHA256,
            parameters: None,
        };
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: self.certificate.tbs_certificate.issuer.clone(),
                serial_number: self.certificate.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256.clone(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(Any::null()),
            },
            signature: OctetString::new(signature).map_err(build)?,
            unsigned_attrs: None,
        };
        let signed = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(build)?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_DATA,
                econtent: None,
            },
            certificates: Some(CertificateSet(
                SetOfVec::try_from(vec![
                    CertificateChoices::Certificate(self.certificate.clone()),
                    CertificateChoices::Certificate(self.wwdr.clone()),
                ])
                .map_err(build)?,
            )),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(build)?),
        };
        ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed).map_err(build)?,
        }
        .to_der()
        .map_err(build)
    }
}

/// A PNG's width and height, from its header (the signature, then the IHDR chunk first, as the
/// PNG specification requires). The server reads no more of an image than this: Wallet draws it.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 33 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if be(8) != 13 {
        return None;
    }
    Some((be(16), be(20)))
}

/// The pass's images (the operator's files, checked once at start): name → PNG bytes.
#[derive(Debug, Clone, Default)]
pub struct PassImages(Vec<(String, Vec<u8>)>);

impl PassImages {
    /// Check each image's role, scale and PNG dimensions against Apple's; an icon is required.
    pub fn new(files: Vec<(String, Vec<u8>)>) -> Result<Self, PassError> {
        for (name, bytes) in &files {
            let (w, h) = png_size(bytes).ok_or_else(|| PassError::Image {
                name: name.clone(),
                reason: "not a PNG".into(),
            })?;
            check_apple_image(name, w, h)?;
        }
        check_apple_image_set(files.iter().map(|(n, _)| n.as_str()))?;
        Ok(PassImages(files))
    }

    /// Every `*.png` of a directory.
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, AppleWalletError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| bad("pass images", e))? {
            let entry = entry.map_err(|e| bad("pass images", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".png") {
                files.push((
                    name,
                    std::fs::read(entry.path()).map_err(|e| bad("pass images", e))?,
                ));
            }
        }
        files.sort();
        Ok(PassImages::new(files)?)
    }
}

/// The `.pkpass` of `pass_json` with `images`, signed at `now_s`.
pub fn pkpass(
    pass_json: &Value,
    images: &PassImages,
    signer: &PassSigner,
    now_s: i64,
) -> Result<Vec<u8>, AppleWalletError> {
    let pass = serde_json::to_vec(pass_json).map_err(build)?;
    let mut files: Vec<(&str, &[u8])> = vec![("pass.json", &pass)];
    files.extend(images.0.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    let manifest: serde_json::Map<String, Value> = files
        .iter()
        .map(|(name, bytes)| {
            let hash = sha1::Sha1::digest(bytes);
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            ((*name).to_owned(), Value::String(hex))
        })
        .collect();
    let manifest = serde_json::to_vec(&manifest).map_err(build)?;
    let signature = signer.sign_detached(&manifest, now_s)?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files.iter().copied().chain([
        ("manifest.json", manifest.as_slice()),
        ("signature", &signature),
    ]) {
        zip.start_file(name, options).map_err(build)?;
        zip.write_all(bytes).map_err(build)?;
    }
    Ok(zip.finish().map_err(build)?.into_inner())
}

/// A random authentication token for a pass's web service requests (base64url, 32 bytes).
pub fn authentication_token() -> Result<String, AppleWalletError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(build)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Read a certificate's DER from a `.pkpass`'s signature (tests, diagnostics).
pub fn signer_certificates(signature: &[u8]) -> Result<Vec<Certificate>, AppleWalletError> {
    let info = ContentInfo::from_der(signature).map_err(build)?;
    let signed: SignedData = info.content.decode_as().map_err(build)?;
    Ok(signed
        .certificates
        .map(|set| {
            set.0
                .into_vec()
                .into_iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c),
                    CertificateChoices::Other(_) => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest PNG header of `w`×`h` (signature, IHDR).
    fn header(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn images_are_checked_by_their_png_header() {
        assert_eq!(png_size(&header(29, 29)), Some((29, 29)));
        assert_eq!(
            png_size(b"GIF89a......................................"),
            None
        );
        let mut bad = header(29, 29);
        bad[12] = b'X';
        assert_eq!(png_size(&bad), None);
        assert!(PassImages::new(vec![("icon.png".into(), header(29, 29))]).is_ok());
        assert!(matches!(
            PassImages::new(vec![("icon.png".into(), header(30, 29))]),
            Err(PassError::Image { .. })
        ));
        assert!(matches!(
            PassImages::new(vec![("logo.png".into(), header(160, 50))]),
            Err(PassError::Image { name, .. }) if name == "icon.png"
        ));
        assert!(matches!(
            PassImages::new(vec![("icon.png".into(), b"not a png".to_vec())]),
            Err(PassError::Image { .. })
        ));
    }
}
