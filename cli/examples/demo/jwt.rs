//! The operator's JWT bearer key: a throwaway RSA key made for the run. Its private half is a
//! canary like the other secrets (the scan looks for its PEM body); the sandbox verifies
//! assertions with its public half (`--salesforce-jwt-public-key`), as a connected app holds
//! the certificate.

use std::time::{Duration, Instant};

use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::{CryptoRng, Error, RngCore};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// A key made for the run: the private key's PEM (PKCS#8), the public key's PEM (SPKI) and how
/// long making it took.
pub struct Key {
    pub private_pem: String,
    pub public_pem: String,
    pub took: Duration,
}

/// The process's CSPRNG (rand's thread RNG, seeded from the OS) through the traits `rsa` takes.
struct KeyRng(rand::rngs::ThreadRng);

impl RngCore for KeyRng {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut self.0)
    }
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut self.0, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        rand::RngCore::fill_bytes(&mut self.0, dest);
        Ok(())
    }
}

impl CryptoRng for KeyRng {}

/// A 2048-bit RSA key, as Salesforce's connected apps take.
pub fn generate_key() -> Result<Key, String> {
    let started = Instant::now();
    let key = RsaPrivateKey::new(&mut KeyRng(rand::rng()), 2048)
        .map_err(|e| format!("cannot make an RSA key: {e}"))?;
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the RSA key: {e}"))?
        .to_string();
    let public_pem = RsaPublicKey::from(&key)
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the RSA public key: {e}"))?;
    Ok(Key {
        private_pem,
        public_pem,
        took: started.elapsed(),
    })
}
