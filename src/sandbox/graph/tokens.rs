//! Ids, change keys and the opaque state tokens (`$skiptoken`, `$deltatoken`) of the
//! emulated tenant. Ids look like Exchange's (long base64 strings with `-`, `_` and `=`)
//! and come from a seeded generator, so a scenario gives the same ids on every run.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What an id names; it goes into the id's bytes so ids of different kinds never collide.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    Event = 0x07,
    Contact = 0x09,
    Task = 0x12,
    Folder = 0x01,
    TaskList = 0x11,
}

/// Exchange's REST id alphabet: standard base64 with `/` as `-` and `+` as `_`, padded.
fn rest_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '/' => '-',
            '+' => '_',
            c => c,
        })
        .collect()
}

/// A new Outlook item or folder id for the mailbox `mailbox_guid`.
pub fn outlook_id(rng: &mut ChaCha8Rng, mailbox_guid: &str, kind: IdKind) -> String {
    // The shape of a real entry id: a header, the mailbox GUID as text, the folder, the item.
    let mut bytes = vec![0x00, 0x03, 0x24, 0x00];
    bytes.extend(mailbox_guid.bytes().take(36));
    bytes.extend([0x00, 0x46, 0x00, 0x00, 0x00, 0x00, 0x00]);
    let folder: [u8; 16] = rng.random();
    bytes.extend(folder);
    bytes.extend([kind as u8, 0x00]);
    let item: [u8; 24] = rng.random();
    bytes.extend(item);
    if matches!(kind, IdKind::Event | IdKind::Contact | IdKind::Task) {
        let more: [u8; 22] = rng.random();
        bytes.extend(more);
    }
    bytes.extend([0x00, 0x00]);
    rest_base64(&bytes)
}

/// Marks the bytes an occurrence adds to its series master's id.
const OCCURRENCE_MARK: [u8; 4] = [0x4f, 0x43, 0x43, 0x52];

fn rest_decode(id: &str) -> Option<Vec<u8>> {
    let standard: String = id
        .chars()
        .map(|c| match c {
            '-' => '/',
            '_' => '+',
            c => c,
        })
        .collect();
    STANDARD.decode(standard.as_bytes()).ok()
}

/// The id of the occurrence of `master_id` whose pattern start is `original_start`: the
/// master's bytes and the start, so it is the same on every answer and names its series.
pub fn occurrence_id(master_id: &str, original_start: jiff::Timestamp) -> String {
    let mut bytes = rest_decode(master_id).unwrap_or_default();
    bytes.extend(OCCURRENCE_MARK);
    bytes.extend(original_start.as_second().to_be_bytes());
    rest_base64(&bytes)
}

/// The series master id and original start an occurrence id names.
pub fn split_occurrence_id(id: &str) -> Option<(String, jiff::Timestamp)> {
    let bytes = rest_decode(id)?;
    let (head, seconds) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    let (master, mark) = head.split_at_checked(head.len().checked_sub(OCCURRENCE_MARK.len())?)?;
    if mark != OCCURRENCE_MARK {
        return None;
    }
    let seconds = i64::from_be_bytes(seconds.try_into().ok()?);
    let start = jiff::Timestamp::from_second(seconds).ok()?;
    Some((rest_base64(master), start))
}

/// An occurrence's `iCalUId`: the master's with the occurrence's date where Exchange puts
/// an instance date (after the fixed prefix).
pub fn occurrence_ical_uid(master_uid: &str, date: jiff::civil::Date) -> String {
    const PREFIX: usize = 32;
    if master_uid.len() < PREFIX + 8 || !master_uid.is_char_boundary(PREFIX + 8) {
        return master_uid.to_string();
    }
    format!(
        "{}{:04X}{:02X}{:02X}{}",
        &master_uid[..PREFIX],
        date.year(),
        date.month(),
        date.day(),
        &master_uid[PREFIX + 8..]
    )
}

/// Whether `id` could be an Exchange id at all (else Graph says `ErrorInvalidIdMalformed`).
pub fn well_formed(id: &str) -> bool {
    let standard: String = id
        .chars()
        .map(|c| match c {
            '-' => '/',
            '_' => '+',
            c => c,
        })
        .collect();
    id.len() >= 8
        && base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
            .decode(standard.as_bytes())
            .is_ok()
}

/// A GUID in lower-case text.
pub fn guid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A change key: a prefix fixed per mailbox and the change's sequence number, so it changes
/// on every write (16 bytes, base64, like the samples' `ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==`).
pub fn change_key(prefix: &[u8; 8], seq: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(prefix);
    bytes[8..].copy_from_slice(&seq.to_be_bytes());
    STANDARD.encode(bytes)
}

/// An `iCalUId`, shaped like Exchange's (a fixed prefix, a time stamp, a GUID).
pub fn ical_uid(rng: &mut ChaCha8Rng) -> String {
    let stamp: [u8; 8] = rng.random();
    let id: [u8; 16] = rng.random();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    format!(
        "040000008200E00074C5B7101A82E00800000000{}000000000000000010000000{}",
        hex(&stamp),
        hex(&id)
    )
}

/// Random base64url text (signatures and ids inside access tokens).
pub fn random_b64(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rng.random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Encodes and decodes the opaque paging and delta tokens. Clients must not read them, so
/// they are scrambled and carry a checksum that tells a damaged token from a real one.
pub struct Codec {
    key: [u8; 32],
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Codec {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_7043_e45a_11ce);
        Codec { key: rng.random() }
    }

    fn scramble(&self, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= self.key[i % self.key.len()].wrapping_add((i / self.key.len()) as u8);
        }
    }

    pub fn encode<T: Serialize>(&self, value: &T) -> String {
        let mut data = serde_json::to_vec(value).unwrap_or_default();
        let sum = fnv1a(&data);
        data.extend(sum.to_be_bytes());
        self.scramble(&mut data);
        URL_SAFE_NO_PAD.encode(data)
    }

    /// `None` for anything this codec did not make.
    pub fn decode<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let mut data = URL_SAFE_NO_PAD.decode(token.trim().as_bytes()).ok()?;
        self.scramble(&mut data);
        if data.len() < 8 {
            return None;
        }
        let (json, sum) = data.split_at(data.len() - 8);
        if fnv1a(json).to_be_bytes() != sum {
            return None;
        }
        serde_json::from_slice(json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_exchange_ids_and_are_reproducible() {
        let make = || {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            outlook_id(
                &mut rng,
                "cd209b0b-3f83-4c35-82d2-d88a61820480",
                IdKind::Event,
            )
        };
        let id = make();
        assert_eq!(id, make());
        assert!(id.starts_with("AAMkA"), "{id}");
        assert!(id.len() > 120, "{id}");
        assert!(!id.contains('/') && !id.contains('+'));
        assert!(well_formed(&id));
        assert!(!well_formed("not an id!"));
    }

    #[test]
    fn tokens_round_trip_and_damage_is_detected() {
        let codec = Codec::new(1);
        let token = codec.encode(&(42u64, "x".to_string()));
        assert_eq!(
            codec.decode::<(u64, String)>(&token),
            Some((42, "x".into()))
        );
        let mut damaged = token.clone();
        damaged.insert(3, 'A');
        assert_eq!(codec.decode::<(u64, String)>(&damaged), None);
        assert_eq!(Codec::new(2).decode::<(u64, String)>(&token), None);
        assert_eq!(codec.decode::<(u64, String)>("garbage%%"), None);
    }

    #[test]
    fn change_keys_change_with_the_sequence() {
        assert_ne!(change_key(&[1; 8], 1), change_key(&[1; 8], 2));
        assert_eq!(change_key(&[1; 8], 1).len(), 24);
    }
}
